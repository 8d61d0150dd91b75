"""No poison pill in alerting: what a consumer does with a message it cannot take.

Every alerting consumer (detection, alarms, incident stage) sets such a message aside and moves
on: it is counted by reason in the service's stats, the first of each kind is logged with its
topic, partition and offset (an unexpected exception: once per exception type, with its
traceback), and the offset is committed like any other. Nothing goes to a dead-letter topic:
the alerting principal has no WRITE on telemetry.dlq, and the message stays on its own topic,
at the logged offset, for whoever wants to look at it.

Besides decoding, a message is refused before it touches any state when it holds what the
contracts allow but alerting cannot use:
- a time outside the years MIN_YEAR..MAX_YEAR: event-time arithmetic (a watermark, a window)
  near datetime's limits overflows, and the alarm database cannot store it;
- a machine-class header that is not a Name: no alert event could carry it;
- an id longer than the alarm database's columns, a NUL character PostgreSQL cannot store, a
  non-finite number JSON cannot carry, an incident version beyond the database's integer.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from alerting.incidents.alarm import incident_event
from plantmesh.contracts import AlertEvent, AlertEventKind, IncidentUpdate, ReadingBatch
from plantmesh.contracts.common import NAME_PATTERN
from plantmesh.dead_letters import MAX_DETAIL_CHARS, Rejection
from plantmesh.topics import DlqReason

MIN_YEAR, MAX_YEAR = 1678, 2261
"""The years alerting takes (in any offset, inside those of int64 nanoseconds since the epoch,
as InfluxDB stores them): no plant sends anything outside, and any rule's window stays far from
years 1 and 9999. Years, not instants: comparing aware datetimes costs a microsecond a reading."""
ID_MAX_CHARS = 64
"""An alarm's id and a member alert id in the alarm database (String(64))."""
VERSION_MAX = 2**31 - 1
"""An incident's version in the alarm database (Integer)."""
MAX_LOGGED_KINDS = 100

_NAME = re.compile(NAME_PATTERN)


class RefusedError(Exception):
    """A decoded message this consumer sets aside; `rejection` says why."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.detail)
        self.rejection = rejection


def internal_error(exc: BaseException) -> Rejection:
    """Handling the message raised `exc`: a bug or a case nobody thought of (as in ingest)."""
    return Rejection(DlqReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")


def _out_of_range(times: Iterable[tuple[str, datetime | None]]) -> Rejection | None:
    for what, ts in times:
        if ts is not None and not MIN_YEAR <= ts.year <= MAX_YEAR:
            detail = f"{what} {ts.isoformat()} is outside the years {MIN_YEAR}..{MAX_YEAR}"
            return Rejection(DlqReason.TIMESTAMP_OUT_OF_RANGE, detail)
    return None


def in_range(ts: datetime) -> bool:
    return MIN_YEAR <= ts.year <= MAX_YEAR


def batch_problem(batch: ReadingBatch, machine_class: str | None) -> Rejection | None:
    """What the detection (and its replays: backtest, explain) refuses in a decoded batch."""
    if machine_class is not None and not _NAME.fullmatch(machine_class):
        shown = machine_class[:60]
        detail = f"machine class header {shown!r} is not a name ({NAME_PATTERN})"
        return Rejection(DlqReason.SCHEMA_MISMATCH, detail)
    for reading in batch.readings:  # the hot path: where it is only for a bad one
        source, gateway = reading.source_ts, reading.gateway_ts
        if not (MIN_YEAR <= source.year <= MAX_YEAR and MIN_YEAR <= gateway.year <= MAX_YEAR):
            where = f"readings[{batch.readings.index(reading)}]"
            return _out_of_range(((f"{where}.source_ts", source), (f"{where}.gateway_ts", gateway)))
    return None


def times_problem(*times: tuple[str, datetime | None]) -> Rejection | None:
    return _out_of_range(times)


def _non_finite(value: Any, where: str) -> str | None:
    """Where in JSON-like data a NaN or an infinity sits (PostgreSQL's json refuses them)."""
    if isinstance(value, float):
        return None if math.isfinite(value) else where
    if isinstance(value, dict):
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _non_finite(item, f"{where}.{key}")
        if found is not None:
            return found
    return None


def _id_problem(what: str, text: str) -> Rejection | None:
    if len(text) > ID_MAX_CHARS or "\x00" in text:
        detail = f"{what} must be at most {ID_MAX_CHARS} characters without NUL"
        return Rejection(DlqReason.SCHEMA_MISMATCH, f"{detail} (got {text[:40]!r}...)")
    return None


def event_problem(event: AlertEvent) -> Rejection | None:
    """What the incident stage and the alarm service refuse in a decoded alert event."""
    found = _id_problem("alert_id", event.alert_id) or _id_problem(
        "rule_version", event.rule_version
    )
    if found is not None:
        return found
    points = event.evidence.points
    found = _out_of_range(
        (("at", event.at), *((f"evidence.points[{i}].ts", p.ts) for i, p in enumerate(points)))
    )
    if found is not None:
        return found
    where = _non_finite([p.value for p in points], "evidence.points") or _non_finite(
        event.evidence.parameters, "evidence.parameters"
    )
    if where is not None:
        return Rejection(DlqReason.NON_FINITE_VALUE, f"{where} is not a finite number")
    return None


def update_problem(update: IncidentUpdate) -> Rejection | None:
    """What the alarm service refuses in a decoded incident update: also everything of the
    alarm event it turns into (alerting/incidents/alarm.py)."""
    if update.version > VERSION_MAX:
        detail = f"version {update.version} is beyond {VERSION_MAX}"
        return Rejection(DlqReason.SCHEMA_MISMATCH, detail)
    try:
        event = incident_event(update, AlertEventKind.RAISED)
    except ValidationError as exc:
        detail = f"no alarm can carry it: {exc}"[:MAX_DETAIL_CHARS]
        return Rejection(DlqReason.SCHEMA_MISMATCH, detail)
    members = [*update.members, *([update.member] if update.member else [])]
    times = [("opened_at", update.opened_at), ("closed_at", update.closed_at)]
    for m in members:
        times += [(f"member {m.alert_id[:40]} raised_at", m.raised_at)]
        times += [(f"member {m.alert_id[:40]} cleared_at", m.cleared_at)]
    found = event_problem(event) or _out_of_range(times)
    if found is not None:
        return found
    for alert_id in dict.fromkeys(a for m in members for a in (m.alert_id, *m.alert_ids)):
        found = _id_problem("a member's alert id", alert_id)
        if found is not None:
            return found
    where = _non_finite(update.explanation, "explanation")
    if where is not None:
        return Rejection(DlqReason.NON_FINITE_VALUE, f"{where} is not a finite number")
    return None


class Skips:
    """Messages set aside: counted by reason into `counts`, the first of each kind logged."""

    def __init__(self, log: logging.Logger, counts: Counter[str], what: str = "message") -> None:
        self.counts = counts
        self._log = log
        self._what = what
        self._logged: set[str] = set()

    def skip(
        self,
        record: ConsumerRecord[Any, Any],
        rejection: Rejection,
        exc: BaseException | None = None,
    ) -> None:
        """`exc`: the unexpected exception handling it raised (logged with its traceback)."""
        reason = str(rejection.reason)
        self.counts[reason] += 1
        kind = reason if exc is None else f"{reason}:{type(exc).__name__}"
        if kind in self._logged or len(self._logged) >= MAX_LOGGED_KINDS:
            return
        self._logged.add(kind)
        self._log.warning(
            "skipping a %s (%s) at %s[%d]@%d: %s (further ones of this kind only counted)",
            self._what,
            reason,
            record.topic,
            record.partition,
            record.offset,
            rejection.detail[:MAX_DETAIL_CHARS],
            exc_info=exc,
        )
