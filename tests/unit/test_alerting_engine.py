from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from alerting.engine import Engine
from alerting.rules import ThresholdRule, ThresholdRuleConfig
from plantmesh.contracts import AlertEvent, AssetPath, Reading, ReadingBatch

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
