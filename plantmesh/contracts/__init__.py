"""The wire contracts every plantmesh service speaks. Import from here, not the submodules."""

from plantmesh.contracts.alarms import (
    ALARM_TRANSITION_CONTRACT,
    CONTRACT_HEADER,
    AlarmState,
    AlarmTransition,
    is_transition,
)
from plantmesh.contracts.alerts import AlertEvent, AlertEventKind, Evidence, EvidencePoint, Severity
from plantmesh.contracts.common import (
    NAME_PATTERN,
    SCHEMA_VERSION,
    SESSION_ID_MAX_LENGTH,
    AssetPath,
    Name,
    SchemaVersion,
    SessionId,
)
from plantmesh.contracts.completeness import CompletenessEvent, CompletenessEventKind
from plantmesh.contracts.decoding import DecodeError, decode, encode
from plantmesh.contracts.gateway import GatewayHealth, GatewayState, GatewayStatus, SourceHealth
from plantmesh.contracts.readings import (
    QUALITY_VALUES,
    STATUS_BAD,
    STATUS_BAD_COMMUNICATION_ERROR,
    STATUS_BAD_SENSOR_FAILURE,
    STATUS_CODE_MAX,
    STATUS_GOOD,
    STATUS_UNCERTAIN,
    BatchHeader,
    Quality,
    Reading,
    ReadingBatch,
    StatusCode,
    Value,
)

__all__ = [
    "ALARM_TRANSITION_CONTRACT",
    "CONTRACT_HEADER",
    "NAME_PATTERN",
    "QUALITY_VALUES",
    "SCHEMA_VERSION",
    "SESSION_ID_MAX_LENGTH",
    "STATUS_BAD",
    "STATUS_BAD_COMMUNICATION_ERROR",
    "STATUS_BAD_SENSOR_FAILURE",
    "STATUS_CODE_MAX",
    "STATUS_GOOD",
    "STATUS_UNCERTAIN",
    "AlarmState",
    "AlarmTransition",
    "AlertEvent",
    "AlertEventKind",
    "AssetPath",
    "BatchHeader",
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
    "SchemaVersion",
    "SessionId",
    "Severity",
    "SourceHealth",
    "StatusCode",
    "Value",
    "decode",
    "encode",
    "is_transition",
]
