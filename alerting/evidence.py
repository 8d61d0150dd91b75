"""Building blocks of alert evidence: bounded point windows, stable number formatting and
deterministic alert ids. Everything here depends only on the readings, never on the wall clock,
so replaying the same input reproduces the same evidence byte for byte."""

from __future__ import annotations

import hashlib
from collections import deque
from datetime import UTC, datetime

from plantmesh.contracts import EvidencePoint

MAX_EVIDENCE_POINTS = 50
_HEAD_POINTS = 10


def utc(ts: datetime) -> datetime:
    """The same instant in UTC, so ids and evidence do not depend on a gateway's offset."""
    return ts.astimezone(UTC)


def iso(ts: datetime) -> str:
    return utc(ts).isoformat().replace("+00:00", "Z")


def num(value: float) -> str:
    """`90.0`, `96.3`: readable and stable (no `96.30000000000001`)."""
    return repr(round(value, 6))


def alert_id(rule: str, series_key: str, first_crossing: datetime) -> str:
    """A hash of (rule, series, first crossing): a replay of the same readings yields the same id,
    which is also what lets consumers drop the duplicates of at-least-once delivery."""
    material = f"{rule}\x00{series_key}\x00{iso(first_crossing)}".encode()
    return hashlib.sha256(material).hexdigest()[:24]


class PointWindow:
    """The points of an episode, bounded: the first few (how it started) and the most recent
    (how it got here). Memory stays constant however long the episode lasts."""

    def __init__(self, capacity: int = MAX_EVIDENCE_POINTS) -> None:
        self._head_cap = min(_HEAD_POINTS, capacity // 2)
        # Plain (time, value) pairs: most windows are thrown away without an event, and a
        # validated EvidencePoint per reading cost rules more than their decision did.
        self._head: list[tuple[datetime, float]] = []
        self._tail: deque[tuple[datetime, float]] = deque(maxlen=capacity - self._head_cap)
        self.total = 0

    def add(self, ts: datetime, value: float) -> None:
        self.total += 1
        if len(self._head) < self._head_cap:
            self._head.append((ts, value))
        else:
            self._tail.append((ts, value))

    def clear(self) -> None:
        self._head.clear()
        self._tail.clear()
        self.total = 0

    @property
    def omitted(self) -> int:
        return self.total - len(self._head) - len(self._tail)

    def points(self) -> list[EvidencePoint]:
        """The points as evidence, made only when an event needs them. Built without
        validation: they come from validated readings (aware times, finite numbers), and
        validating 50 points cost an event more than its decision."""
        return [
            EvidencePoint.model_construct(ts=utc(ts), value=float(value))
            for ts, value in (*self._head, *self._tail)
        ]
