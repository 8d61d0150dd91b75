"""The threshold rule on a timeline (ARCHITECTURE convention 8): readings carry explicit source
timestamps, and assertions say at which source time each alert event happens."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, timedelta, timezone
from typing import Any

import pytest

from alerting.engine import Engine
from alerting.evidence import MAX_EVIDENCE_POINTS
from alerting.rules import ThresholdRule, ThresholdRuleConfig
from plantmesh.contracts import (
    STATUS_BAD_SENSOR_FAILURE,
    AlertEvent,
    AssetPath,
    Quality,
    Reading,
)
from tests.support.alerting import CLEARED, RAISED, at, timeline

PRESS = AssetPath.parse("plant-a/stamping/line1/press-01")
PRESS2 = AssetPath.parse("plant-a/stamping/line1/press-02")
PLANT_B = AssetPath.parse("plant-b/stamping/line1/press-01")


def reading(
    t: float,
    value: float | bool | str,
    *,
    asset: AssetPath = PRESS,
    signal: str = "bearing_temp",
    quality: Quality = Quality.GOOD,
    status_code: int = 0,
    tz: timezone = UTC,
) -> Reading:
    ts = at(t).astimezone(tz)
    return Reading(
        asset=asset,
        signal=signal,
        value=value,
        unit="degC",
        quality=quality,
        status_code=status_code,
        source_ts=ts,
        gateway_ts=ts,
    )


def rule(**overrides: Any) -> ThresholdRule:
    params: dict[str, Any] = {
        "name": "bearing-overtemp",
        "type": "threshold",
        "issue_type": "bearing-overtemperature",
        "signal": "bearing_temp",
        "above": 90.0,
        "deadband": 5.0,
        "on_delay_s": 5.0,
        "severity": "high",
    }
    params.update(overrides)
    return ThresholdRule(ThresholdRuleConfig.model_validate(params))


def feed(engine: Engine, readings: Iterable[Reading]) -> list[AlertEvent]:
    events: list[AlertEvent] = []
    for r in readings:
        events.extend(engine.process(r))
    return events


def steps(start: float, stop: float, step: float, value: float) -> list[Reading]:
    """Readings every `step` s from `start` up to and excluding `stop`, all at `value`."""
    count = round((stop - start) / step)
    return [reading(round(start + i * step, 6), value) for i in range(count)]


def test_raises_exactly_when_the_on_delay_has_elapsed_in_source_time() -> None:
    # Normal until t=10, above 90 from t=10: pending at 10, raised at t=15 (not before), cleared
    # by the first reading below 85.
    readings = [*steps(0, 10, 1, 80.0), *steps(10, 30, 1, 95.0), reading(30, 84.0)]
    engine = Engine([rule()])
    events = feed(engine, readings)
    assert timeline(events) == [(15.0, RAISED), (30.0, CLEARED)]
    assert events[0].alert_id == events[1].alert_id


@pytest.mark.parametrize(
    ("step", "raised_at"),
    [(0.5, 15.0), (1.0, 15.0), (2.0, 16.0), (0.7, 15.6), (3.0, 16.0)],
)
def test_raise_is_the_first_reading_at_or_after_the_on_delay(step: float, raised_at: float) -> None:
    events = feed(Engine([rule()]), [reading(5, 80.0), *steps(10, 20, step, 95.0)])
    assert timeline(events) == [(raised_at, RAISED)]


def test_zero_on_delay_raises_on_the_first_crossing() -> None:
    events = feed(Engine([rule(on_delay_s=0)]), [reading(1, 80.0), reading(2, 90.5)])
    assert timeline(events) == [(2.0, RAISED)]


def test_value_equal_to_the_threshold_is_not_above_it() -> None:
    events = feed(Engine([rule(on_delay_s=0)]), steps(0, 10, 1, 90.0))
    assert events == []


def test_raised_evidence() -> None:
    values = [91.0, 93.5, 96.3, 95.0, 94.0, 92.0, 91.5, 93.0, 94.2, 95.1, 92.2, 91.1, 90.5, 90.7]
    readings = [reading(10 + i * 0.4, v) for i, v in enumerate(values)]  # t = 10.0 ... 15.2
    [event] = feed(Engine([rule()]), [reading(9.6, 80.0), *readings])
    assert event.kind is RAISED
    assert event.rule == "bearing-overtemp"
    assert event.asset == PRESS
    assert event.signal == "bearing_temp"
    assert event.severity.value == "high"
    assert event.at == at(15.2)
    ev = event.evidence
    assert ev.summary == (
        "bearing_temp of plant-a/stamping/line1/press-01 above 90.0 degC for 5.2 s (max 96.3)"
    )
    assert ev.condition == "value > 90.0 for >= 5.0 s"
    assert [(p.ts, p.value) for p in ev.points] == [(r.source_ts, r.value) for r in readings]
    assert ev.parameters == {
        "threshold": 90.0,
        "direction": "above",
        "deadband": 5.0,
        "on_delay_s": 5.0,
        "first_crossing_ts": "2026-01-01T00:00:10Z",
        "max": 96.3,
        "points_total": 14,
    }


def test_cleared_evidence() -> None:
    readings = [*steps(10, 20, 1, 95.0), reading(20, 97.5), reading(21, 88.0), reading(22, 84.5)]
    raised, cleared = feed(Engine([rule()]), readings)
    assert cleared.kind is CLEARED
    assert cleared.alert_id == raised.alert_id
    assert cleared.at == at(22)
    ev = cleared.evidence
    assert ev.summary == (
        "bearing_temp of plant-a/stamping/line1/press-01 back below 85.0 degC (84.5) "
        "after 7.0 s raised (max 97.5)"
    )
    assert ev.condition == "value < 85.0 (threshold 90.0 - deadband 5.0)"
    # From after the raise up to the clearing reading.
    assert [(p.ts, p.value) for p in ev.points][-3:] == [
        (at(20), 97.5),
        (at(21), 88.0),
        (at(22), 84.5),
    ]
    assert ev.points[0].ts == at(16)
    assert ev.parameters["clear_level"] == 85.0
    assert ev.parameters["raised_at"] == "2026-01-01T00:00:15Z"
    assert ev.parameters["first_crossing_ts"] == "2026-01-01T00:00:10Z"
    assert ev.parameters["active_s"] == 7.0
    assert ev.parameters["max"] == 97.5


def test_spike_shorter_than_the_on_delay_raises_nothing() -> None:
    readings = [*steps(0, 10, 1, 80.0), *steps(10, 14.5, 0.5, 99.0), *steps(14.5, 30, 1, 80.0)]
    assert feed(Engine([rule()]), readings) == []


def test_pending_resets_when_the_value_drops_inside_the_deadband() -> None:
    # 89 is below the threshold but above threshold - deadband: enough to reset a pending one.
    readings = [
        *steps(10, 14, 1, 95.0),
        reading(14, 89.0),
        *steps(15, 30, 1, 95.0),
    ]
    events = feed(Engine([rule()]), readings)
    assert timeline(events) == [(20.0, RAISED)]
    assert events[0].evidence.parameters["first_crossing_ts"] == "2026-01-01T00:00:15Z"


def test_hovering_in_the_deadband_neither_clears_nor_raises_again() -> None:
    hover = [86.0, 89.9, 85.0, 90.0, 87.0, 93.0, 99.0, 85.1, 88.0]
    readings = [
        *steps(10, 16, 1, 95.0),
        *[reading(16 + i, v) for i, v in enumerate(hover)],
        reading(40, 84.9),
    ]
    events = feed(Engine([rule()]), readings)
    assert timeline(events) == [(15.0, RAISED), (40.0, CLEARED)]
    assert events[1].evidence.parameters["max"] == 99.0


def test_a_new_excursion_after_clearing_is_a_new_alert() -> None:
    readings = [*steps(0, 10, 1, 95.0), reading(10, 80.0), *steps(20, 30, 1, 95.0)]
    events = feed(Engine([rule()]), readings)
    assert timeline(events) == [(5.0, RAISED), (10.0, CLEARED), (25.0, RAISED)]
    assert events[2].alert_id != events[0].alert_id


def excursions() -> list[Reading]:
    return [
        *steps(0, 10, 1, 80.0),
        *steps(10, 20, 0.5, 96.0),
        reading(20, 70.0),
        *steps(21, 23, 1, 92.0),  # a spike
        *steps(30, 45, 1, 91.0),
        reading(45, 80.0),
    ]


def test_replaying_the_same_input_gives_identical_events_and_ids() -> None:
    first = feed(Engine([rule()]), excursions())
    second = feed(Engine([rule()]), excursions())
    assert len(first) == 4
    assert first == second
    assert [e.model_dump_json() for e in first] == [e.model_dump_json() for e in second]
    assert len({e.alert_id for e in first}) == 2


def test_alert_id_depends_on_the_instant_not_on_the_gateways_utc_offset() -> None:
    cet = timezone(timedelta(hours=1))
    utc_events = feed(Engine([rule()]), excursions())
    local = [r.model_copy(update={"source_ts": r.source_ts.astimezone(cet)}) for r in excursions()]
    local_events = feed(Engine([rule()]), local)
    assert [e.alert_id for e in local_events] == [e.alert_id for e in utc_events]
    assert local_events[0].evidence == utc_events[0].evidence


def test_alert_id_differs_per_rule_and_series() -> None:
    readings = [*steps(10, 16, 1, 95.0)]
    other_machine = [r.model_copy(update={"asset": PRESS2}) for r in readings]
    engine = Engine([rule(), rule(name="bearing-overtemp-2")])
    events = feed(engine, [*readings, *other_machine])
    assert len(events) == 4
    assert len({e.alert_id for e in events}) == 4


def test_processing_delay_does_not_matter_only_source_time() -> None:
    # The same source timestamps, received in batches long after the fact: same outcome.
    readings = [*steps(10, 14, 1, 95.0), reading(14, 89.0), *steps(15, 21, 1, 95.0)]
    delayed = [
        r.model_copy(update={"gateway_ts": r.source_ts + timedelta(hours=3)}) for r in readings
    ]
    assert feed(Engine([rule()]), delayed) == feed(Engine([rule()]), readings)
    assert timeline(feed(Engine([rule()]), readings)) == [(20.0, RAISED)]


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
    readings = [
        reading(t, v) for t, v in enumerate([95.0, True, "hot", 95.0, 95.0, 95.0, 95.0, 95.0])
    ]
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
    assert engine.rules[0].ignored_out_of_order == 2


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
