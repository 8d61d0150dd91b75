"""The wire contracts every plantmesh service speaks. Import from here, not the submodules."""

from plantmesh.contracts.alerts import AlertEvent, AlertEventKind, Evidence, EvidencePoint, Severity
from plantmesh.contracts.common import SCHEMA_VERSION, AssetPath, Name
from plantmesh.contracts.completeness import CompletenessEvent, CompletenessEventKind
from plantmesh.contracts.decoding import DecodeError, decode, encode
from plantmesh.contracts.gateway import GatewayHealth, GatewayState, GatewayStatus, SourceHealth
from plantmesh.contracts.readings import (
    STATUS_BAD,
    STATUS_BAD_COMMUNICATION_ERROR,
    STATUS_BAD_SENSOR_FAILURE,
    STATUS_GOOD,
    STATUS_UNCERTAIN,
    Quality,
    Reading,
    ReadingBatch,
    Value,
)

__all__ = [
    "SCHEMA_VERSION",
    "STATUS_BAD",
    "STATUS_BAD_COMMUNICATION_ERROR",
    "STATUS_BAD_SENSOR_FAILURE",
    "STATUS_GOOD",
    "STATUS_UNCERTAIN",
    "AlertEvent",
    "AlertEventKind",
    "AssetPath",
    "CompletenessEvent",
    "CompletenessEventKind",
    "DecodeError",
    "Evidence",
    "EvidencePoint",
    "GatewayHealth",
    "GatewayState",
    "GatewayStatus",
    "Name",
    "Quality",
    "Reading",
    "ReadingBatch",
    "Severity",
    "SourceHealth",
    "Value",
    "decode",
    "encode",
]
