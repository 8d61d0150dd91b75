"""The threshold rule with imperfect input, on a timeline: bad and uncertain quality, readings out
of order or twice, filters by plant, machine and class, gates, and the watermark."""

from __future__ import annotations

from alerting.engine import Engine
from alerting.evidence import MAX_EVIDENCE_POINTS
from alerting.rules import ThresholdRule
from plantmesh.contracts import (
    STATUS_BAD_SENSOR_FAILURE,
    Quality,
)
from tests.support.alerting import CLEARED, RAISED, at, timeline
from tests.support.threshold import PLANT_B, PRESS, PRESS2, feed, reading, rule, steps


def test_bad_quality_readings_are_ignored_and_the_evidence_says_so() -> None:
    readings = [
        reading(10, 95.0),
        reading(11, 95.0),
        reading(12, 20.0, quality=Quality.BAD),  # would reset the pending alert if believed
        reading(13, 95.0),
        reading(14, 95.0, quality=Quality.GOOD, status_code=STATUS_BAD_SENSOR_FAILURE),
        reading(15, 95.0),
    ]
    [event] = feed(Engine([rule()]), readings)
    assert timeline([event]) == [(15.0, RAISED)]
    assert event.evidence.parameters["bad_quality_ignored"] == 2
    assert event.evidence.summary.endswith("; 2 bad-quality reading(s) ignored")
    assert [p.ts for p in event.evidence.points] == [at(10), at(11), at(13), at(15)]


def test_bad_quality_cannot_raise_or_clear() -> None:
    bad = Quality.BAD
    assert (
        feed(Engine([rule(on_delay_s=0)]), [reading(t, 99.0, quality=bad) for t in range(9)]) == []
    )
    readings = [*steps(0, 6, 1, 95.0), reading(6, 10.0, quality=bad), reading(7, 95.0)]
    assert timeline(feed(Engine([rule()]), readings)) == [(5.0, RAISED)]


def test_uncertain_quality_is_evaluated() -> None:
    readings = [reading(t, 95.0, quality=Quality.UNCERTAIN) for t in range(6)]
    assert timeline(feed(Engine([rule()]), readings)) == [(5.0, RAISED)]


def test_out_of_order_and_duplicate_readings_are_ignored() -> None:
    threshold = rule()
    readings = [
        *steps(10, 13, 1, 95.0),
        reading(5, 20.0),  # older than the last accepted reading: ignored
        reading(12, 20.0),  # same timestamp as the last one: a duplicate, ignored
        *steps(13, 16, 1, 95.0),
    ]
    events = feed(Engine([threshold]), readings)
    assert timeline(events) == [(15.0, RAISED)]
    assert threshold.ignored_out_of_order == 2


def test_below_rule() -> None:
    low = rule(
        name="pressure-low", signal="pressure", above=None, below=10.0, deadband=2.0, on_delay_s=3.0
    )
    values = [12.0, 9.5, 9.0, 8.0, 7.5, 9.9, 11.5, 10.0, 8.0, 12.0, 12.1]
    readings = [reading(t, v, signal="pressure") for t, v in enumerate(values)]
    raised, cleared = feed(Engine([low]), readings)
    assert timeline([raised, cleared]) == [(4.0, RAISED), (10.0, CLEARED)]
    assert raised.evidence.condition == "value < 10.0 for >= 3.0 s"
    assert raised.evidence.summary == (
        "pressure of plant-a/stamping/line1/press-01 below 10.0 degC for 3.0 s (min 7.5)"
    )
    assert raised.evidence.parameters["min"] == 7.5
    assert cleared.evidence.condition == "value > 12.0 (threshold 10.0 + deadband 2.0)"
    assert "back above 12.0 degC (12.1)" in cleared.evidence.summary


def test_plant_and_machine_filters() -> None:
    engine = Engine([rule(plants=["plant-a"], machines=["press-02"], on_delay_s=0)])
    readings = [
        reading(1, 95.0, asset=PRESS),  # wrong machine
        reading(1, 95.0, asset=PLANT_B),  # wrong plant
        reading(1, 95.0, asset=PRESS, signal="motor_temp"),  # wrong signal
        reading(2, 95.0, asset=PRESS2),
    ]
    events = feed(engine, readings)
    assert [(e.asset, e.at) for e in events] == [(PRESS2, at(2))]


def test_empty_filters_match_every_plant_and_machine() -> None:
    events = feed(
        Engine([rule(on_delay_s=0)]), [reading(1, 95.0, asset=a) for a in (PRESS, PRESS2, PLANT_B)]
    )
    assert {e.asset for e in events} == {PRESS, PRESS2, PLANT_B}


def test_each_series_has_its_own_state() -> None:
    # press-01 crosses at 10 and stays; press-02 crosses at 12 and drops at 14: only press-01.
    readings = []
    for t in range(10, 20):
        readings.append(reading(t, 95.0, asset=PRESS))
        readings.append(reading(t, 95.0 if 12 <= t < 14 else 80.0, asset=PRESS2))
    events = feed(Engine([rule()]), readings)
    assert [(e.asset, e.at) for e in events] == [(PRESS, at(15))]


def test_non_numeric_values_are_ignored() -> None:
    values: list[float | bool | str] = [95.0, True, "hot", 95.0, 95.0, 95.0, 95.0, 95.0]
    readings = [reading(t, v) for t, v in enumerate(values)]
    # Neither resets the pending alert nor counts as a point: the raise comes at t=5 all the same.
    [event] = feed(Engine([rule()]), readings)
    assert timeline([event]) == [(5.0, RAISED)]
    assert [p.ts for p in event.evidence.points] == [at(0), at(3), at(4), at(5)]


def test_evidence_points_are_capped_keeping_start_and_end() -> None:
    readings = [reading(10 + i * 0.1, 95.0 + (i % 7)) for i in range(1001)]  # 10 Hz for 100 s
    [event] = feed(Engine([rule(on_delay_s=100)]), readings)
    points = event.evidence.points
    assert len(points) == MAX_EVIDENCE_POINTS
    assert points[0].ts == at(10)
    assert points[-1].ts == event.at == readings[-1].source_ts
    assert event.evidence.parameters["points_total"] == 1001
    assert event.evidence.parameters["points_omitted"] == 1001 - MAX_EVIDENCE_POINTS
    assert event.evidence.parameters["max"] == 101.0


def test_a_report_by_exception_signal_raises_on_the_watermark_not_on_its_next_reading() -> None:
    # An OPC UA data change: 95 at t=10, then nothing until it falls back at t=100. Other series
    # keep event time moving; the on-delay completes at 15 on the watermark, not at t=100.
    engine = Engine([rule()], lateness_s=2.0)
    events = feed(engine, [reading(0, 80.0), reading(10, 95.0)])
    other = [reading(t, 20.0, signal="oil_temp") for t in range(11, 18)]
    events += feed(engine, other)
    assert engine.watermark == at(15)
    events += engine.advance()
    assert timeline(events) == [(15.0, RAISED)]
    assert events[0].evidence.parameters["first_crossing_ts"] == "2026-01-01T00:00:10Z"
    assert engine.advance() == []  # raised once
    events += feed(engine, [reading(100, 80.0)])
    assert timeline(events) == [(15.0, RAISED), (100.0, CLEARED)]


def test_the_watermark_waits_for_late_data() -> None:
    engine = Engine([rule()], lateness_s=10.0)
    feed(engine, [reading(10, 95.0), reading(20, 95.0, signal="oil_temp")])
    assert engine.advance() == []  # watermark 10: the on-delay (until 15) is not over yet
    # A late reading inside the lateness ends the episode before the watermark decides.
    feed(engine, [reading(12, 80.0)])
    feed(engine, [reading(40, 20.0, signal="oil_temp")])
    assert engine.advance() == []


def test_a_reading_behind_the_watermark_never_takes_back_a_published_raise() -> None:
    # The watermark raised at 15; a reading of t=12 (after the series' last, behind the
    # watermark) saying the value was normal then cannot unsay it: it clears, at the raise.
    engine = Engine([rule()], lateness_s=2.0)
    events = feed(engine, [reading(10, 95.0), reading(30, 20.0, signal="oil_temp")])
    events += engine.advance()
    assert timeline(events) == [(15.0, RAISED)]
    events += feed(engine, [reading(12, 80.0)])
    assert timeline(events) == [(15.0, RAISED), (15.0, CLEARED)]
    events += feed(engine, [reading(11, 80.0), reading(12, 95.0)])  # not newer: ignored
    events += engine.advance()
    assert timeline(events) == [(15.0, RAISED), (15.0, CLEARED)]
    threshold = engine.rules[0]
    assert isinstance(threshold, ThresholdRule)
    assert threshold.ignored_out_of_order == 2


def test_events_carry_issue_type_rule_version_and_machine_class() -> None:
    engine = Engine([rule(on_delay_s=0.0)])
    (event,) = engine.process(reading(1, 95.0), machine_class="hydraulic_press")
    assert event.issue_type == "bearing-overtemperature"
    assert event.machine_class == "hydraulic_press"
    assert event.rule_version == rule(on_delay_s=0.0).config.version
    assert event.rule_version != rule(above=91.0).config.version  # a changed rule, a new version


def test_machine_class_filter() -> None:
    engine = Engine([rule(on_delay_s=0.0, machine_classes=["hydraulic_press"])])
    assert engine.process(reading(1, 95.0), machine_class="cnc_mill") == []
    assert engine.process(reading(2, 95.0)) == []  # class unknown: not targeted
    assert timeline(engine.process(reading(3, 95.0), machine_class="hydraulic_press")) == [
        (3.0, RAISED)
    ]


def test_a_gated_rule_does_not_page_while_the_machine_is_stopped() -> None:
    gated = rule(on_delay_s=0.0, gate={"signal": "running", "equals": True})
    engine = Engine([gated], gates={"running"})
    running = [reading(t, v, signal="running") for t, v in ((0, False), (20, True))]
    events = feed(engine, [running[0], reading(5, 95.0), reading(10, 96.0), running[1]])
    assert events == []  # hot while stopped (e.g. cooling down after a run): no page
    assert timeline(feed(engine, [reading(21, 95.0)])) == [(21.0, RAISED)]


def test_a_bad_reading_delivered_twice_is_counted_once() -> None:
    bad = reading(2, 95.0, quality=Quality.BAD)
    readings = [reading(0, 95.0), bad, bad, reading(3, 95.0), reading(5, 95.0)]
    [event] = feed(Engine([rule()]), readings)
    assert timeline([event]) == [(5.0, RAISED)]
    assert event.evidence.parameters["bad_quality_ignored"] == 1
