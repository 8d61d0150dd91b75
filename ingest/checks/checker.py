"""Checking one raw Kafka message reading by reading, so one bad reading never hides good ones.

Three paths, each taken only when the one before cannot decide. The quick path
(ingest.checks.clean: orjson and plain Python checks, timestamps read straight to nanoseconds,
about 2 µs a reading with its line) takes a clean batch in the form gateways send. The fast path
validates the whole batch against `fast_schema.WireBatch`, a TypedDict mirror of the ReadingBatch
contract that pydantic-core checks in Rust without building models, then per reading the time
bounds, the registry and the line-protocol line, straight from the dicts. Both give the same
lines and data (hypothesis checks it).

When the fast path fails, the slow path parses the JSON once, validates the envelope (gateway,
session, seq), then each reading on its own against the real contract, whose error messages go
to the DLQ. A broken envelope rejects the message as a whole; a broken reading rejects only
itself: its DLQ entry is the envelope with that reading alone (replayable once fixed; a
one-reading message keeps its original bytes) and the reading's index in the batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
import pydantic_core
from pydantic import Field, ValidationError

from ingest.checks.clean import Route, RouteKey, quick_check
from ingest.checks.wire_schema import WIRE_BATCH, WireBatch, WireReading
from ingest.line_protocol import LineProtocolError, reading_series, timestamp_ns, value_and_tail
from ingest.normalize.registry import AssetRegistry, NormalizeError
from plantmesh.contracts import Reading, ReadingBatch
from plantmesh.contracts.common import SCHEMA_VERSION, AwareDatetime, Name, WireModel
from plantmesh.contracts.decoding import describe_validation_error
from plantmesh.dead_letters import Rejection
from plantmesh.topics import DlqReason


class _Envelope(WireModel):
    """A ReadingBatch whose readings are not looked at yet."""

    schema_version: Literal[1] = SCHEMA_VERSION
    gateway_id: Name
    session_id: Annotated[str, Field(min_length=1, max_length=64)]
    seq: Annotated[int, Field(ge=0)]
    sent_at: AwareDatetime
    readings: Annotated[list[Any], Field(min_length=1)]


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = 1_000_000
    max_future_s: float | None = 600.0
    max_past_s: float | None = 30 * 86_400.0


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
    when the quick path let go of them (see `source`): use `envelope`."""
    received: int
    """Readings the batch carried, good and bad."""
    lines: list[str] = field(default_factory=list)
    bad: list[BadReading] = field(default_factory=list)
    changed: bool = False
    """True when the good readings differ from what arrived (normalized, or some dropped)."""
    raw: bool = False
    """The envelope is plain JSON data (the quick path): timestamps are still text."""
    source: bytes | None = None
    """The message as it arrived, for a clean batch that the quick path kept no readings of:
    thousands of dicts alive per poll cost the garbage collector more than parsing them again
    on the rare call that needs them."""
    first_plant: str | None = None

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


def _reason_of(error: ValidationError) -> DlqReason:
    kinds = {item["type"] for item in error.errors(include_url=False)}
    if "json_invalid" in kinds:
        return DlqReason.MALFORMED_JSON
    if "finite_number" in kinds:
        return DlqReason.NON_FINITE_VALUE
    return DlqReason.SCHEMA_MISMATCH


def _rejection(error: ValidationError, prefix: str = "") -> Rejection:
    details = describe_validation_error(error)
    return Rejection(_reason_of(error), "; ".join(prefix + line for line in details))


ROUTE_CACHE_SIZE = 100_000
_RouteKey = RouteKey
_Route = Route


class Validator:
    """Checks raw messages against the contract, the time bounds and the registry. `quick`:
    try ingest.checks.clean first (off only to compare both paths in tests)."""

    def __init__(
        self, limits: Limits, registry: AssetRegistry | None = None, *, quick: bool = True
    ) -> None:
        self.limits = limits
        self.registry = registry
        self.quick = quick
        self._routes: dict[_RouteKey, _Route | Rejection] = {}

    def _resolve(self, key: _RouteKey) -> _Route | Rejection:
        """`_route` of a key of valid names, cached."""
        routes = self._routes
        if len(routes) >= ROUTE_CACHE_SIZE:
            routes.clear()  # a flood of distinct series: start over, do not grow
        route = routes[key] = self._route(*key)
        return route

    def _route(
        self, plant: str, area: str, line: str, machine: str, signal: str, unit: str | None
    ) -> _Route | Rejection:
        """Registry plan and line-protocol series of one series as it arrives: decided once."""
        try:
            plan = None
            if self.registry is not None:
                plan = self.registry.plan_for(plant, machine, signal, unit)
            if plan is not None:
                signal, unit = plan.signal, plan.unit
            return plan, reading_series(plant, area, line, machine, signal, unit or "")
        except NormalizeError as exc:
            return Rejection(exc.reason, str(exc))
        except LineProtocolError as exc:
            return Rejection(DlqReason.UNWRITABLE, str(exc))

    def check(
        self, value: bytes | None, now: datetime, now_ns: int | None = None
    ) -> Checked | Rejection:
        """`now_ns`: `now` in epoch nanoseconds, when the caller has it (saves the sum)."""
        if not value:
            return Rejection(DlqReason.EMPTY_PAYLOAD, "message has no value")
        if len(value) > self.limits.max_message_bytes:
            return Rejection(
                DlqReason.OVERSIZED,
                f"message of {len(value)} bytes exceeds "
                f"writer.validation.max_message_bytes={self.limits.max_message_bytes}",
            )
        if now_ns is None:
            now_ns = timestamp_ns(now)
        limits = self.limits
        quick = self.quick and quick_check(
            value,
            now_ns - _ns(limits.max_past_s) if limits.max_past_s else None,
            now_ns + _ns(limits.max_future_s) if limits.max_future_s else None,
            self._routes,
            self._resolve,
        )
        if quick:
            batch, lines, changed = quick
            readings = batch["readings"]
            plant = readings[0]["asset"]["plant"]
            if changed:
                return Checked(batch, len(lines), lines, changed=True, raw=True, first_plant=plant)  # type: ignore[arg-type]
            del batch["readings"]
            return Checked(batch, len(lines), lines, raw=True, source=value, first_plant=plant)  # type: ignore[arg-type]
        try:
            envelope = WIRE_BATCH.validate_json(value)
        except ValidationError as exc:
            if _reason_of(exc) == DlqReason.MALFORMED_JSON:
                return _rejection(exc)
            return self._slow(value, now)
        return self._finish(envelope, value, now)

    def _slow(self, value: bytes, now: datetime) -> Checked | Rejection:
        try:
            envelope = _Envelope.model_validate(pydantic_core.from_json(value))
        except ValidationError as exc:
            return _rejection(exc)
        except ValueError as exc:  # from_json: not JSON after all
            return Rejection(DlqReason.MALFORMED_JSON, str(exc))
        good: list[WireReading] = []
        positions: list[int] = []
        bad: list[BadReading] = []
        for index, raw in enumerate(envelope.readings):
            try:
                reading = Reading.model_validate(raw)
            except ValidationError as exc:
                rejection = _rejection(exc, f"readings[{index}].")
                bad.append(BadReading(index, _isolate(value, index), rejection))
                continue
            good.append(reading.model_dump())  # type: ignore[arg-type]
            positions.append(index)
        wire: WireBatch = envelope.model_dump()  # type: ignore[assignment]
        wire["readings"] = good
        checked = self._finish(wire, value, now, positions)
        checked.received = len(envelope.readings)
        checked.bad[:0] = bad
        checked.changed = True
        return checked

    def _finish(
        self, envelope: WireBatch, value: bytes, now: datetime, positions: list[int] | None = None
    ) -> Checked:
        """Time bounds, registry and line per reading. `positions`: where each reading sat in
        the message (the slow path has dropped some already)."""
        readings = envelope["readings"]
        checked = Checked(envelope, len(readings))
        limits = self.limits
        lo = now - timedelta(seconds=limits.max_past_s) if limits.max_past_s else None
        hi = now + timedelta(seconds=limits.max_future_s) if limits.max_future_s else None
        routes = self._routes
        kept: list[WireReading] = []
        lines = checked.lines
        for index, reading in enumerate(readings):
            rejection: Rejection | None = None
            ts = reading["source_ts"]
            if (hi is not None and ts > hi) or (lo is not None and ts < lo):
                original = positions[index] if positions is not None else index
                rejection = Rejection(
                    DlqReason.TIMESTAMP_OUT_OF_RANGE,
                    f"readings[{original}].source_ts {ts.isoformat()} is outside "
                    f"[now - {limits.max_past_s}s, now + {limits.max_future_s}s]",
                )
            else:
                asset = reading["asset"]
                key = (
                    asset["plant"],
                    asset["area"],
                    asset["line"],
                    asset["machine"],
                    reading["signal"],
                    reading.get("unit"),
                )
                route = routes.get(key)
                if route is None:
                    route = self._resolve(key)
                if isinstance(route, Rejection):
                    rejection = route
                else:
                    plan, series = route
                    try:
                        if plan is not None:
                            reading = plan.apply(reading)
                            checked.changed = True
                        lines.append(
                            series
                            + value_and_tail(
                                reading["value"],
                                reading.get("status_code", 0),
                                reading.get("quality", "good"),
                                ts,
                            )
                        )
                    except NormalizeError as exc:
                        rejection = Rejection(exc.reason, str(exc))
                    except LineProtocolError as exc:
                        rejection = Rejection(DlqReason.UNWRITABLE, str(exc))
                    else:
                        kept.append(reading)
                        continue
                original = positions[index] if positions is not None else index
                rejection = Rejection(rejection.reason, f"readings[{original}]: {rejection.detail}")
            original = positions[index] if positions is not None else index
            checked.bad.append(BadReading(original, _isolate(value, original), rejection))
        if checked.changed or len(kept) != len(readings):
            checked.changed = True
            envelope["readings"] = kept
        return checked


def _ns(seconds: float) -> int:
    """A limit in nanoseconds, rounded to microseconds as `timedelta(seconds=...)` does."""
    return round(seconds * 1_000_000) * 1_000


def _isolate(value: bytes, index: int) -> bytes:
    """The original batch with only reading `index`: the envelope stays, for context and replay."""
    obj = pydantic_core.from_json(value, allow_inf_nan=True)
    if len(obj["readings"]) == 1:
        return value  # the message is that reading: keep its bytes exactly
    obj["readings"] = [obj["readings"][index]]
    return json.dumps(obj, separators=(",", ":")).encode()
