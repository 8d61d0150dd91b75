"""Shared helpers of the alerting rule tests: a timeline in source seconds after T0, readings
fed to a rule, and the replay property every rule must keep (same input, same events; every
reading delivered twice changes nothing)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from alerting.rules.base import NO_CONTEXT, Context
from plantmesh.contracts import AlertEvent, AlertEventKind, AssetPath, Reading

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MILL = AssetPath.parse("plant-a/area/line/mill-01")
RAISED, CLEARED = AlertEventKind.RAISED, AlertEventKind.CLEARED


class Evaluates(Protocol):
    def evaluate(self, reading: Reading, context: Context = NO_CONTEXT) -> list[AlertEvent]: ...

    def tick(self, watermark: datetime) -> list[AlertEvent]: ...


def at(t: float) -> datetime:
    """Source time `t` seconds after T0."""
    return T0 + timedelta(seconds=t)


def feed(
    target: Evaluates, readings: Iterable[Reading], context: Context = NO_CONTEXT
) -> list[AlertEvent]:
    """Every event the rule makes from `readings`, in order."""
    return [event for r in readings for event in target.evaluate(r, context)]


def timeline(events: Iterable[AlertEvent]) -> list[tuple[float, AlertEventKind]]:
    """Events as (source seconds since T0, kind): what the assertions read like."""
    return [((e.at - T0).total_seconds(), e.kind) for e in events]


def assert_replay_and_duplicates_change_nothing(
    fresh: Callable[[], Evaluates], readings: list[Reading], end: float
) -> None:
    """Two fresh rules fed the same readings (then ticked to `end`) make the same events, and
    so does one fed every reading twice: at-least-once delivery changes no decision."""
    a, b = fresh(), fresh()
    first = feed(a, readings) + a.tick(at(end))
    assert first == feed(b, readings) + b.tick(at(end))
    doubled = fresh()
    twice = feed(doubled, [r for one in readings for r in (one, one)]) + doubled.tick(at(end))
    assert twice == first
