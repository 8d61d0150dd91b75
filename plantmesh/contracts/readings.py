"""Readings and reading batches: what an edge agent publishes, one batch per MQTT message.

Bad means no value: a reading whose quality is Bad carries no `value` (null or absent on the
wire) and keeps its `status_code`; OPC UA servers put a placeholder (0, "") beside a Bad status,
and a placeholder stored as a number looks like a measurement. A reading of any other quality must
carry a value; an Uncertain one keeps it, flagged by `quality`. A Bad reading that still carries a
value is accepted with the value dropped (the contract's model drops it, and so do ingest's
checks): the edge agent never sends one, and dropping keeps the status of another producer's Bad
reading instead of dead-lettering it.

Exact numbers: numbers travel as JSON numbers read as float64. A float32 source value is
published as the shortest decimal that round-trips in float32 (a register holding 123.456 is sent
as 123.456, not 123.45600128173828; plantmesh.contracts.numbers). A 64-bit integer beyond 2**53
has no exact float: the edge agent publishes it as a Bad reading with STATUS_BAD_OUT_OF_RANGE and
logs why once per signal (the agent is the last place that still holds the exact integer; once it
is a float on the wire nobody can tell it was rounded).
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from typing import Annotated

from pydantic import Field, model_validator

from plantmesh.contracts.common import (
    SCHEMA_VERSION,
    AssetPath,
    Name,
    SchemaVersion,
    Seq,
    SessionId,
    Timestamp,
    WireModel,
)


class Quality(StrEnum):
    """The OPC UA status code's severity, the part most consumers branch on."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"

    @classmethod
    def from_status_code(cls, status_code: int) -> Quality:
        # OPC UA Part 4: the two top bits of a StatusCode are its severity.
        severity = (status_code >> 30) & 0b11
        if severity == 0:
            return cls.GOOD
        if severity == 1:
            return cls.UNCERTAIN
        return cls.BAD


QUALITY_VALUES: frozenset[str] = frozenset(quality.value for quality in Quality)
"""`quality` as text on the wire, for checks that read JSON without building a Reading."""

STATUS_CODE_MAX = 0xFFFFFFFF
"""An OPC UA StatusCode is 32 bits."""
StatusCode = Annotated[int, Field(ge=0, le=STATUS_CODE_MAX, strict=True)]

STATUS_GOOD = 0x00000000
STATUS_UNCERTAIN = 0x40000000
STATUS_BAD = 0x80000000
STATUS_BAD_COMMUNICATION_ERROR = 0x80050000
STATUS_BAD_SENSOR_FAILURE = 0x808B0000
STATUS_BAD_OUT_OF_RANGE = 0x803C0000
"""A value the source holds but no reading can carry exactly (a 64-bit integer beyond 2**53)."""

# Numbers are carried as float (exact for integers up to 2**53, which covers 32-bit counters),
# booleans as bool, anything else as text. NaN and infinity are rejected at the boundary.
Value = Annotated[float, Field(allow_inf_nan=False)] | bool | str

VALUE_REQUIRED = "value is required unless quality is bad (only a Bad reading carries no value)"
"""The one error text both checking paths give for a missing value (ingest.checks)."""


class Reading(WireModel):
    """One value of one signal of one machine at one instant."""

    asset: AssetPath
    signal: Name
    value: Value | None = None
    """None exactly when `quality` is Bad (see the module's docstring)."""
    unit: str | None = None
    status_code: StatusCode = STATUS_GOOD
    quality: Quality = Quality.GOOD
    source_ts: Timestamp
    gateway_ts: Timestamp

    @model_validator(mode="after")
    def _bad_means_no_value(self) -> Reading:
        if self.quality is Quality.BAD:
            if self.value is not None:
                # Frozen model: set the field as pydantic itself does while validating.
                self.__dict__["value"] = None
        elif self.value is None:
            raise ValueError(VALUE_REQUIRED)
        return self

    @cached_property
    def series_key(self) -> str:
        """`plant/area/line/machine/signal`; made once per instance (every alerting rule on the
        signal asks for it). Not a field, as AssetPath.key."""
        return f"{self.asset.key}/{self.signal}"


class BatchHeader(WireModel):
    """Everything of a ReadingBatch but its readings: what a consumer can check of a batch
    before it looks at the readings, one by one (ingest's writer does)."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    gateway_id: Name
    session_id: SessionId
    seq: Seq
    sent_at: Timestamp


class ReadingBatch(BatchHeader):
    """What one MQTT message carries. (gateway_id, session_id, seq) makes it traceable end to end:
    ingest uses the sequence numbers of a session to prove completeness."""

    readings: Annotated[list[Reading], Field(min_length=1)]
