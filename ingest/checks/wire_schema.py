"""The ReadingBatch contract as TypedDicts, for the conforming tier (ingest.checks.conforming).

pydantic-core validates these in Rust and returns plain dicts: no model instances, no Python
validator callbacks, which makes a whole batch several times quicker to check than the models.
Each field takes the contract's own type (plantmesh.contracts) except the timestamps: pydantic's
AwareDatetime checks the timezone in Rust where the contract's runs a Python validator.
tests/unit/test_ingest_checks.py checks with hypothesis that both accept the same batches and
give the same data.
"""

from __future__ import annotations

from typing import Annotated, NotRequired

from pydantic import AwareDatetime, ConfigDict, Field, TypeAdapter
from typing_extensions import TypedDict

from plantmesh.contracts import Name, Quality, SchemaVersion, SessionId, StatusCode, Value
from plantmesh.contracts.common import NonNegativeInt

_FORBID = ConfigDict(extra="forbid")


class WireAsset(TypedDict):
    __pydantic_config__ = _FORBID  # type: ignore[misc]
    plant: Name
    area: Name
    line: Name
    machine: Name


class WireReading(TypedDict):
    __pydantic_config__ = _FORBID  # type: ignore[misc]
    asset: WireAsset
    signal: Name
    value: Value
    unit: NotRequired[str | None]
    status_code: NotRequired[StatusCode]
    quality: NotRequired[Quality]
    source_ts: AwareDatetime
    gateway_ts: AwareDatetime


class WireBatch(TypedDict):
    __pydantic_config__ = _FORBID  # type: ignore[misc]
    schema_version: NotRequired[SchemaVersion]
    gateway_id: Name
    session_id: SessionId
    seq: NonNegativeInt
    sent_at: AwareDatetime
    readings: Annotated[list[WireReading], Field(min_length=1)]


WIRE_BATCH: TypeAdapter[WireBatch] = TypeAdapter(WireBatch)
