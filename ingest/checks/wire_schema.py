"""The ReadingBatch contract as TypedDicts, for the writer's hot path.

pydantic-core validates these in Rust and returns plain dicts: no model instances, no Python
validator callbacks (pydantic's own AwareDatetime checks the timezone in Rust). The constraints
are the contract's, field by field; tests/unit/test_ingest_validation.py checks with hypothesis
that both accept the same batches and give the same data. Whatever fails here is checked again
against the real contract (plantmesh.contracts), whose messages go to the DLQ.
"""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, TypeAdapter
from typing_extensions import TypedDict

from plantmesh.contracts import SCHEMA_VERSION

_FORBID = ConfigDict(extra="forbid")
WireName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class WireAsset(TypedDict):
    __pydantic_config__ = _FORBID  # type: ignore[misc]
    plant: WireName
    area: WireName
    line: WireName
    machine: WireName


class WireReading(TypedDict):
    __pydantic_config__ = _FORBID  # type: ignore[misc]
    asset: WireAsset
    signal: WireName
    value: Annotated[float, Field(allow_inf_nan=False)] | bool | str
    unit: NotRequired[str | None]
    status_code: NotRequired[Annotated[int, Field(ge=0, le=0xFFFFFFFF)]]
    quality: NotRequired[Literal["good", "uncertain", "bad"]]
    source_ts: AwareDatetime
    gateway_ts: AwareDatetime


class WireBatch(TypedDict):
    __pydantic_config__ = _FORBID  # type: ignore[misc]
    schema_version: NotRequired[Literal[1]]
    gateway_id: WireName
    session_id: Annotated[str, Field(min_length=1, max_length=64)]
    seq: Annotated[int, Field(ge=0)]
    sent_at: AwareDatetime
    readings: Annotated[list[WireReading], Field(min_length=1)]


assert SCHEMA_VERSION == 1  # WireBatch.schema_version follows the contract's
WIRE_BATCH: TypeAdapter[WireBatch] = TypeAdapter(WireBatch)
