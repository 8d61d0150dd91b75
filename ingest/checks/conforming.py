"""The conforming tier: any batch the contract accepts as a whole.

pydantic-core validates the message against `wire_schema.WireBatch` in Rust, several times
quicker than building the contract's models; then each reading is held on its own to the time
bounds, the registry and line protocol, so a reading out of range or of an unknown machine
rejects only itself. A batch the schema refuses goes to the partial tier, which finds the
readings at fault. `place_readings` is also the partial tier's last step.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError

from ingest.checks.outcome import (
    BadReading,
    Checked,
    Limits,
    Tier,
    isolate,
    reason_of,
    rejection_of,
)
from ingest.checks.series import SeriesKey, SeriesPlan, SeriesPlans
from ingest.checks.wire_schema import WIRE_BATCH, WireBatch, WireReading
from ingest.line_protocol import LineProtocolError, value_and_tail
from ingest.normalize.registry import NormalizeError
from plantmesh.contracts import STATUS_GOOD, Quality
from plantmesh.dead_letters import Rejection
from plantmesh.topics import DlqReason


def check_conforming(
    value: bytes, now: datetime, limits: Limits, plans: SeriesPlans
) -> Checked | Rejection | None:
    """None when the batch does not conform as a whole (the partial tier decides); a Rejection
    when it is no JSON at all."""
    try:
        envelope = WIRE_BATCH.validate_json(value)
    except ValidationError as exc:
        if reason_of(exc) == DlqReason.MALFORMED_JSON:
            return rejection_of(exc)
        return None
    return place_readings(envelope, value, now, limits, plans, Tier.CONFORMING)


def place_readings(
    envelope: WireBatch,
    value: bytes,
    now: datetime,
    limits: Limits,
    plans: SeriesPlans,
    tier: Tier,
    positions: list[int] | None = None,
) -> Checked:
    """Time bounds, registry and line of each reading of a valid envelope. `positions`: where
    each reading sat in the message, when the partial tier has dropped some already."""
    readings = envelope["readings"]
    checked = Checked(envelope, len(readings), tier)
    lo, hi = limits.window(now)
    known, resolve = plans.known.get, plans.resolve
    kept: list[WireReading] = []
    for index, reading in enumerate(readings):
        original = index if positions is None else positions[index]
        ts = reading["source_ts"]
        if (hi is not None and ts > hi) or (lo is not None and ts < lo):
            rejection = limits.outside(original, ts)
        else:
            key = series_key(reading)
            placed = _place(reading, known(key) or resolve(key))
            if not isinstance(placed, Rejection):
                kept.append(placed[0])
                checked.lines.append(placed[1])
                checked.changed |= placed[0] is not reading
                continue
            rejection = Rejection(placed.reason, f"readings[{original}]: {placed.detail}")
        checked.bad.append(BadReading(original, isolate(value, original), rejection))
    if checked.changed or len(kept) != len(readings):
        checked.changed = True
        envelope["readings"] = kept
    return checked


def series_key(reading: WireReading) -> SeriesKey:
    asset = reading["asset"]
    return (
        asset["plant"],
        asset["area"],
        asset["line"],
        asset["machine"],
        reading["signal"],
        reading.get("unit"),
    )


def _place(
    reading: WireReading, series_plan: SeriesPlan | Rejection
) -> tuple[WireReading, str] | Rejection:
    """The reading as the registry has it (itself when unchanged) and its line."""
    if isinstance(series_plan, Rejection):
        return series_plan
    plan, series = series_plan
    try:
        if reading.get("quality") is Quality.BAD and reading.get("value") is not None:
            # Bad means no value (plantmesh.contracts.readings): dropped, as the contract does.
            reading = {k: v for k, v in reading.items() if k != "value"}  # type: ignore[assignment]
        if plan is not None:
            reading = plan.apply(reading)
        tail = value_and_tail(
            reading.get("value"),
            reading.get("status_code", STATUS_GOOD),
            reading.get("quality", Quality.GOOD),
            reading["source_ts"],
        )
    except NormalizeError as exc:
        return Rejection(exc.reason, str(exc))
    except LineProtocolError as exc:
        return Rejection(DlqReason.UNWRITABLE, str(exc))
    return reading, series + tail
