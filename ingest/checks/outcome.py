"""What the checking tiers share: the limits a reading is held to, and what a check gives back.

A check gives a Rejection when the message as a whole is unusable, else a Checked: the good
readings with their lines, the bad ones each with its own rejection, and the tier that decided.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import orjson
import pydantic_core
from pydantic import ValidationError

from ingest.checks.wire_schema import WIRE_BATCH, WireBatch, WireReading
from plantmesh.contracts import ReadingBatch
from plantmesh.contracts.decoding import ROOT, describe_validation_error
from plantmesh.dead_letters import Rejection
from plantmesh.topics import DlqReason

_NEVER_BEFORE = -(2**80)  # bounds in nanoseconds when a time limit is off
_NEVER_AFTER = 2**80


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = 1_000_000
    max_future_s: float | None = 600.0
    max_past_s: float | None = 30 * 86_400.0

    def window(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        """The source timestamps a reading may carry at `now`; None: no limit."""
        lo = now - timedelta(seconds=self.max_past_s) if self.max_past_s else None
        hi = now + timedelta(seconds=self.max_future_s) if self.max_future_s else None
        return lo, hi

    def window_ns(self, now_ns: int) -> tuple[int, int]:
        """`window` in epoch nanoseconds, the same instants (rounded to microseconds as
        timedelta rounds); far out of reach when a limit is off."""
        past, future = self.max_past_s, self.max_future_s
        lo = now_ns - round(past * 1_000_000) * 1_000 if past else _NEVER_BEFORE
        hi = now_ns + round(future * 1_000_000) * 1_000 if future else _NEVER_AFTER
        return lo, hi

    def outside(self, index: int, ts: datetime) -> Rejection:
        return Rejection(
            DlqReason.TIMESTAMP_OUT_OF_RANGE,
            f"readings[{index}].source_ts {ts.isoformat()} is outside "
            f"[now - {self.max_past_s}s, now + {self.max_future_s}s]",
        )


class Tier(StrEnum):
    """Which check decided, named by what it accepts (ingest.checks has one module each)."""

    CLEAN = "clean"
    """A clean batch in the form gateways send: read as plain JSON, kept as bytes."""
    CONFORMING = "conforming"
    """A batch the contract accepts as a whole; readings may still fail the time bounds, the
    registry or line protocol."""
    PARTIAL = "partial"
    """A batch with readings the contract refuses, checked reading by reading."""


@dataclass(frozen=True)
class BadReading:
    index: int
    value: bytes
    """The reading inside a copy of its batch's envelope, as JSON."""
    rejection: Rejection


@dataclass
class Checked:
    """A message whose envelope is valid: the readings that passed, and those that did not."""

    data: WireBatch
    """The batch as validated; its `readings` are the good ones, normalized. Without readings
    when the clean tier let go of them (see `source`): use `envelope`."""
    received: int
    """Readings the batch carried, good and bad."""
    tier: Tier
    lines: list[str] = field(default_factory=list)
    bad: list[BadReading] = field(default_factory=list)
    changed: bool = False
    """True when the good readings differ from what arrived (normalized, or some dropped)."""
    source: bytes | None = None
    """The message as it arrived, for a clean batch that the clean tier kept no readings of:
    thousands of dicts alive per poll cost the garbage collector more than parsing them again
    on the rare call that needs them."""
    first_plant: str | None = None

    @property
    def raw(self) -> bool:
        """The envelope is plain JSON data (the clean tier): timestamps are still text."""
        return self.tier is Tier.CLEAN

    @property
    def envelope(self) -> WireBatch:
        if "readings" not in self.data and self.source is not None:
            self.data = orjson.loads(self.source)
        return self.data

    @property
    def gateway_id(self) -> str:
        return self.data["gateway_id"]

    @property
    def session_id(self) -> str:
        return self.data["session_id"]

    @property
    def seq(self) -> int:
        return self.data["seq"]

    @property
    def readings(self) -> list[WireReading]:
        return self.envelope["readings"]

    @property
    def plant(self) -> str | None:
        if self.first_plant is not None:
            return self.first_plant
        readings = self.readings
        return readings[0]["asset"]["plant"] if readings else None

    @property
    def batch(self) -> ReadingBatch | None:
        """The good readings as the contract's model (built on demand: the hot path never
        needs it); None when no reading passed."""
        if not self.readings:
            return None
        return ReadingBatch.model_validate_json(self.to_json())

    def to_json(self) -> bytes:
        """The good readings as a ReadingBatch message (what `encode` would give)."""
        envelope = WIRE_BATCH.validate_python(self.envelope) if self.raw else self.envelope
        return WIRE_BATCH.dump_json(envelope, exclude_none=True)


def reason_of(error: ValidationError) -> DlqReason:
    kinds = {item["type"] for item in error.errors(include_url=False)}
    if "json_invalid" in kinds:
        return DlqReason.MALFORMED_JSON
    if "finite_number" in kinds:
        return DlqReason.NON_FINITE_VALUE
    return DlqReason.SCHEMA_MISMATCH


def rejection_of(error: ValidationError, prefix: str = "") -> Rejection:
    """The contract's own error messages, one per offending field."""
    details = describe_validation_error(error)
    return Rejection(reason_of(error), "; ".join(_prefixed(prefix, line) for line in details))


def _prefixed(prefix: str, line: str) -> str:
    # A rule on the reading as a whole (e.g. a value is required unless quality is Bad) is
    # located at its root: `readings[3]: ...`, not `readings[3].<root>: ...`.
    if prefix.endswith(".") and line.startswith(ROOT + ":"):
        return prefix[:-1] + line[len(ROOT) :]
    return prefix + line


def isolate(value: bytes, index: int) -> bytes:
    """The original batch with only reading `index`: the envelope stays, for context and replay
    once fixed; a one-reading message keeps its bytes exactly."""
    obj = pydantic_core.from_json(value, allow_inf_nan=True)
    if len(obj["readings"]) == 1:
        return value
    obj["readings"] = [obj["readings"][index]]
    return json.dumps(obj, separators=(",", ":")).encode()
