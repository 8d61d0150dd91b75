"""The ReadingBatch contract as TypedDicts, for the conforming tier (ingest.checks.conforming).

pydantic-core validates these in Rust and returns plain dicts: no model instances, no Python
validator callbacks, which makes a whole batch several times quicker to check than the models.
Each field takes the contract's own type (plantmesh.contracts), timestamps included: their form
check (RFC 3339 text, no epoch numbers, at most microseconds) is a Python callback, a cost only
this fallback tier pays. tests/unit/test_ingest_checks.py checks with hypothesis that both
accept the same batches and give the same data; tests/unit/test_ingest_verdicts.py runs one
table of lenient and extreme forms through every path.
"""

from __future__ import annotations

from typing import Annotated, NotRequired

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter
from typing_extensions import TypedDict

from plantmesh.contracts import (
    VALUE_REQUIRED,
    Name,
    Quality,
    SchemaVersion,
    Seq,
    SessionId,
    StatusCode,
    Timestamp,
    Value,
)

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
    value: NotRequired[Value | None]
    """Absent or None exactly when `quality` is Bad (`_value_unless_bad`; ingest.checks drops
    the value of a Bad reading as the contract does)."""
    unit: NotRequired[str | None]
    status_code: NotRequired[StatusCode]
    quality: NotRequired[Quality]
    source_ts: Timestamp
    gateway_ts: Timestamp


def _value_unless_bad(reading: WireReading) -> WireReading:
    """The contract's rule that only a Bad reading goes without a value (Reading's validator)."""
    if reading.get("value") is None and reading.get("quality") is not Quality.BAD:
        raise ValueError(VALUE_REQUIRED)
    return reading


class WireBatch(TypedDict):
    __pydantic_config__ = _FORBID  # type: ignore[misc]
    schema_version: NotRequired[SchemaVersion]
    gateway_id: Name
    session_id: SessionId
    seq: Seq
    sent_at: Timestamp
    readings: Annotated[
        list[Annotated[WireReading, AfterValidator(_value_unless_bad)]], Field(min_length=1)
    ]


WIRE_BATCH: TypeAdapter[WireBatch] = TypeAdapter(WireBatch)
