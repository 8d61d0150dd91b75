from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from alerting.engine import Engine
from alerting.rules import StaleRule, StaleRuleConfig, ThresholdRule, ThresholdRuleConfig
from alerting.rules.base import NO_CONTEXT, Context
from plantmesh.contracts import (
    AlertEvent,
    AlertEventKind,
    AssetPath,
    GatewayState,
    GatewayStatus,
    Reading,
    ReadingBatch,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PRESS = AssetPath.parse("plant-a/stamping/line1/press-01")


def reading(signal: str, value: float) -> Reading:
    return Reading(asset=PRESS, signal=signal, value=value, source_ts=T0, gateway_ts=T0)


def threshold(name: str, signal: str) -> ThresholdRule:
    return ThresholdRule(
        ThresholdRuleConfig(
            name=name,
            type="threshold",
            issue_type="process-drift",
            signal=signal,
            above=1.0,
            severity="low",
        )
    )


class Exploding:
    name = "exploding"
    signals = frozenset({"temp"})

    def __init__(self) -> None:
        self.calls = 0

    def evaluate(self, reading: Reading, context: object = None) -> list[AlertEvent]:
        self.calls += 1
        raise RuntimeError("bug in a rule")

    def tick(self, watermark: datetime) -> list[AlertEvent]:
        raise RuntimeError("bug in a rule's tick")


def test_routes_readings_only_to_rules_of_their_signal() -> None:
    engine = Engine([threshold("t", "temp"), threshold("p", "pressure")])
    events = engine.process(reading("temp", 5.0))
    assert [e.rule for e in events] == ["t"]


def test_process_batch_evaluates_every_reading() -> None:
    engine = Engine([threshold("t", "temp"), threshold("p", "pressure")])
    batch = ReadingBatch(
        gateway_id="gw",
        session_id="s",
        seq=0,
        sent_at=T0,
        readings=[reading("temp", 5.0), reading("pressure", 5.0), reading("other", 5.0)],
    )
    assert sorted(e.rule for e in engine.process_batch(batch)) == ["p", "t"]


def test_duplicate_rule_names_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate rule names: t"):
        Engine([threshold("t", "a"), threshold("t", "b")])


def test_a_failing_rule_does_not_stop_the_others_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exploding = Exploding()
    engine = Engine([exploding, threshold("t", "temp")])
    with caplog.at_level(logging.ERROR, logger="alerting.engine"):
        results = [engine.process(reading("temp", 5.0)) for _ in range(3)]
    # The healthy rule still raised (once: the repeats share a timestamp, so they are duplicates).
    assert [[e.rule for e in events] for events in results] == [["t"], [], []]
    assert exploding.calls == 3
    assert engine.rule_errors == 3
    assert len([r for r in caplog.records if "rule exploding failed" in r.getMessage()]) == 1


class Recorder:
    name = "recorder"
    signals = frozenset({"temp"})

    def __init__(self) -> None:
        self.contexts: list[Context] = []

    def evaluate(self, reading: Reading, context: Context = NO_CONTEXT) -> list[AlertEvent]:
        self.contexts.append(context)
        return []

    def tick(self, watermark: datetime) -> list[AlertEvent]:
        return []


def test_rules_hear_the_sending_gateway_and_the_newest_event_time() -> None:
    recorder = Recorder()
    engine = Engine([recorder])
    late = Reading(
        asset=PRESS, signal="temp", value=1.0, source_ts=T0 - timedelta(seconds=90), gateway_ts=T0
    )
    batch = ReadingBatch(
        gateway_id="gw-7", session_id="s", seq=0, sent_at=T0, readings=[reading("temp", 1), late]
    )
    engine.process_batch(batch, "press")
    engine.process(reading("temp", 2))
    assert [(c.gateway_id, c.newest, c.machine_class) for c in recorder.contexts] == [
        ("gw-7", T0, "press"),
        ("gw-7", T0, "press"),  # the newest so far, not the late reading's own time
        (None, T0, None),
    ]


def at(t: float) -> datetime:
    return T0 + timedelta(seconds=t)


def status(state: GatewayState, t: float, session: str) -> GatewayStatus:
    return GatewayStatus(
        gateway_id="gw-1", plant="plant-a", session_id=session, state=state, at=at(t)
    )


def stale_engine() -> Engine:
    config = StaleRuleConfig(
        name="silent", type="stale", issue_type="comms-loss", signal="temp", for_s=30.0
    )
    return Engine([StaleRule(config)])


def kinds(events: list[AlertEvent]) -> list[tuple[AlertEventKind, float]]:
    return [(e.kind, (e.at - T0).total_seconds()) for e in events]


def test_a_death_counts_only_for_the_session_seen_alive() -> None:
    engine = stale_engine()

    def send(state: GatewayState, t: float, session: str) -> list[tuple[AlertEventKind, float]]:
        return kinds(engine.gateway_status(status(state, t, session), at(t)))

    # Retained at subscription: the death of a session long gone, then the live one's birth.
    assert send(GatewayState.DEATH, -3600, "s0") == []
    assert send(GatewayState.BIRTH, 0, "s1") == []
    assert send(GatewayState.DEATH, 1, "s0") == []  # still not the live session
    assert engine.ignored_stale_deaths == 2
    assert send(GatewayState.HEALTH, 10, "s1") == []
    assert send(GatewayState.DEATH, 20, "s1") == [(AlertEventKind.RAISED, 20)]
    assert send(GatewayState.DEATH, 21, "s1") == []  # the same outage
    assert send(GatewayState.HEALTH, 15, "s1") == []  # sent before the death: not back
    assert send(GatewayState.BIRTH, 40, "s1") == [(AlertEventKind.CLEARED, 40)]  # reconnected
    assert send(GatewayState.HEALTH, 45, "s1") == []  # up: health changes nothing
    assert engine.ignored_stale_deaths == 2


def test_health_after_a_death_is_the_gateway_back_even_if_its_birth_went_missing() -> None:
    engine = stale_engine()
    engine.gateway_status(status(GatewayState.HEALTH, 0, "s1"), at(0))  # seen alive: health only
    (down,) = engine.gateway_status(status(GatewayState.DEATH, 0, "s1"), at(20))
    assert kinds([down]) == [(AlertEventKind.RAISED, 20)]
    # In flight before the death was known: not a sign of life after it.
    assert engine.gateway_status(status(GatewayState.HEALTH, 15, "s1"), at(15)) == []
    (up,) = engine.gateway_status(status(GatewayState.HEALTH, 50, "s2"), at(50))
    assert kinds([up]) == [(AlertEventKind.CLEARED, 50)]
    assert up.alert_id == down.alert_id
    # s2 is the live session now: a late death of s1 is not news.
    assert engine.gateway_status(status(GatewayState.DEATH, 30, "s1"), at(60)) == []
    assert engine.ignored_stale_deaths == 1


def test_every_event_names_the_gateway_its_machine_came_through() -> None:
    engine = Engine(
        [
            threshold("t", "temp"),
            StaleRule(
                StaleRuleConfig(
                    name="silent", type="stale", issue_type="comms-loss", signal="temp", for_s=30.0
                )
            ),
        ]
    )
    batch = ReadingBatch(
        gateway_id="gw-1", session_id="s1", seq=0, sent_at=T0, readings=[reading("temp", 5.0)]
    )
    [raised] = engine.process_batch(batch)
    assert raised.gateway_id == "gw-1"
    # A decision made on a tick, long after the batch: the machine's gateway is remembered.
    silent = [e for e in engine.advance(at(120)) if e.rule == "silent"]
    assert [e.gateway_id for e in silent] == ["gw-1"]
    engine.gateway_status(status(GatewayState.BIRTH, 130, "s1"), at(130))
    [down] = engine.gateway_status(status(GatewayState.DEATH, 140, "s1"), at(140))
    assert (down.asset.machine, down.gateway_id) == ("gw-1", "gw-1")
    # Checkpoints from before this field restore without it.
    old = Engine([threshold("t", "temp")])
    del old.gateway_of
    fresh = Engine([threshold("t", "temp")])
    fresh.adopt(old)
    assert fresh.gateway_of == {}
