"""The bad-quality (sensor fault) rule on a timeline: readings carry explicit source timestamps
(seconds after T0) and assertions say at which source time each alert event happens."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from alerting.rules.bad_quality import BadQualityRule, BadQualityRuleConfig, quality_of
from alerting.rules.base import Context, MachineStates
from plantmesh.contracts import (
    STATUS_BAD_COMMUNICATION_ERROR,
    STATUS_BAD_SENSOR_FAILURE,
    STATUS_UNCERTAIN,
    AlertEvent,
    Quality,
    Reading,
)
from tests.support.alerting import CLEARED, MILL, RAISED, T0, at, feed, timeline

BAD = STATUS_BAD_SENSOR_FAILURE


def reading(
    t: float,
    status_code: int = 0,
    *,
    value: float | bool | str = 42.0,
    quality: Quality = Quality.GOOD,
    signal: str = "spindle_temp",
) -> Reading:
    return Reading(
        asset=MILL,
        signal=signal,
        value=value,
        unit="degC",
        status_code=status_code,
        quality=quality,
        source_ts=at(t),
        gateway_ts=at(t),
    )


def rule(**overrides: Any) -> BadQualityRule:
    params: dict[str, Any] = {
        "name": "spindle-temp-sensor-fault",
        "type": "bad_quality",
        "issue_type": "sensor-fault",
        "signal": "spindle_temp",
        "for_s": 30.0,
    }
    params.update(overrides)
    return BadQualityRule(BadQualityRuleConfig.model_validate(params))


def polled() -> list[Reading]:
    """Every 10 s: good until t=50, Bad (sensor failure) from t=50 to t=140, good from t=150."""
    return [reading(t, BAD if 50 <= t < 150 else 0, value=float(t)) for t in range(0, 200, 10)]


def test_bad_for_for_s_raises_and_good_readings_clear() -> None:
    events = feed(rule(), polled())
    assert timeline(events) == [(80.0, RAISED), (150.0, CLEARED)]
    assert events[0].alert_id == events[1].alert_id
    assert events[0].issue_type == "sensor-fault"


def test_raised_evidence() -> None:
    raised = feed(rule(), polled())[0]
    assert raised.evidence.parameters == {
        "status_code": "0x808B0000",
        "first_status_code": "0x808B0000",
        "quality": "bad",
        "since": "2026-01-01T00:00:50Z",
        "bad_for_s": 30.0,
        "last_bad_ts": "2026-01-01T00:01:20Z",
        "bad_readings": 4,
        "for_s": 30.0,
        "include_uncertain": "false",
        "off_delay_s": 0.0,
        "raised_by": "reading",
    }
    assert [p.value for p in raised.evidence.points] == [50.0, 60.0, 70.0, 80.0]
    assert raised.evidence.summary == (
        "spindle_temp of plant-a/area/line/mill-01 reports bad quality (0x808B0000) for 30.0 s "
        "since 2026-01-01T00:00:50Z, 4 bad reading(s)"
    )


def test_cleared_evidence() -> None:
    cleared = feed(rule(), polled())[1]
    params = cleared.evidence.parameters
    assert params["good_at"] == "2026-01-01T00:02:30Z"
    assert params["good_status_code"] == "0x00000000"
    assert params["bad_readings"] == 10
    assert params["raised_at"] == "2026-01-01T00:01:20Z"


def test_uncertain_counts_only_when_included() -> None:
    uncertain = [reading(t, STATUS_UNCERTAIN) for t in range(0, 100, 10)]
    assert feed(rule(), uncertain) == []
    events = feed(rule(include_uncertain=True), uncertain)
    assert timeline(events) == [(30.0, RAISED)]
    assert events[0].evidence.parameters["quality"] == "uncertain"


def test_quality_is_the_worse_of_the_field_and_the_status_code() -> None:
    assert quality_of(reading(0, quality=Quality.BAD)) is Quality.BAD
    assert quality_of(reading(0, BAD, quality=Quality.UNCERTAIN)) is Quality.BAD
    assert quality_of(reading(0, STATUS_UNCERTAIN)) is Quality.UNCERTAIN
    assert quality_of(reading(0)) is Quality.GOOD
    bad_field = [reading(t, quality=Quality.BAD) for t in range(0, 50, 10)]
    assert timeline(feed(rule(), bad_field)) == [(30.0, RAISED)]


def test_any_value_type_and_the_latest_status_code() -> None:
    readings = [
        reading(0, BAD, value="n/a"),
        reading(10, STATUS_BAD_COMMUNICATION_ERROR, value=True),
        reading(30, STATUS_BAD_COMMUNICATION_ERROR, value=False),
    ]
    [raised] = feed(rule(), readings)
    assert raised.evidence.parameters["first_status_code"] == "0x808B0000"
    assert raised.evidence.parameters["status_code"] == "0x80050000"
    assert raised.evidence.points == []  # no numbers to show


def test_a_persisting_bad_status_raises_on_the_watermark() -> None:
    target = rule()
    assert feed(target, [reading(0), reading(10, BAD)]) == []
    assert target.tick(at(39)) == []
    [raised] = target.tick(at(100))
    assert timeline([raised]) == [(40.0, RAISED)]
    assert raised.evidence.parameters["raised_by"] == "watermark"
    assert raised.evidence.parameters["bad_readings"] == 1
    assert target.tick(at(200)) == []  # raised once
    assert feed(target, [reading(35)]) == []  # older than the silence decision: late
    assert timeline(feed(target, [reading(120)])) == [(120.0, CLEARED)]


def test_the_off_delay_keeps_a_flapping_sensor_one_episode() -> None:
    target = rule(off_delay_s=20)
    assert timeline(feed(target, [reading(0, BAD), reading(30, BAD)])) == [(30.0, RAISED)]
    assert feed(target, [reading(40), reading(50, BAD), reading(60)]) == []
    assert target.tick(at(79)) == []
    assert timeline(target.tick(at(100))) == [(80.0, CLEARED)]


def test_the_gate_decides_raising_not_clearing() -> None:
    states = MachineStates()
    states.update(reading(0, value=False, signal="running"))
    context = Context("cnc_mill", states)
    target = rule(gate={"signal": "running"})
    assert feed(target, [reading(0, BAD)], context) == []
    assert target.tick(at(100)) == []  # stopped: sensors may be powered off
    states.update(reading(200, value=True, signal="running"))
    assert target.tick(at(210)) == []  # gate seen open at 210: counts from there
    [raised] = target.tick(at(240))
    assert timeline([raised]) == [(240.0, RAISED)]
    assert raised.evidence.parameters["gate"] == "running == True"
    states.update(reading(250, value=False, signal="running"))
    assert feed(target, [reading(260, BAD)], context) == []  # still bad, still raised
    assert timeline(feed(target, [reading(270)], context)) == [(270.0, CLEARED)]


def test_out_of_order_duplicated_and_late_readings_change_nothing() -> None:
    readings = polled()
    noisy: list[Reading] = []
    for i, r in enumerate(readings):
        noisy += [r, r]
        if i >= 3:
            t = (r.source_ts - T0).total_seconds()
            noisy.append(reading(t - 15, 0 if r.status_code else BAD))
    target = rule()
    assert feed(target, noisy) == feed(rule(), readings)
    assert target.ignored_out_of_order == 2 * len(readings) - 3


@pytest.mark.parametrize("overrides", [{"for_s": -1}, {"for_s": None}, {"off_delay_s": -1}])
def test_impossible_configurations_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        rule(**overrides)


samples = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=40),  # step to the next reading, s (0: same ts)
        st.sampled_from([0, STATUS_UNCERTAIN, BAD, STATUS_BAD_COMMUNICATION_ERROR]),
    ),
    max_size=50,
)


def replay(steps: list[tuple[int, int]], *, twice_each: bool = False) -> list[AlertEvent]:
    """Feed the readings, ticking a watermark 5 s behind each one, as the engine would."""
    target = rule(for_s=20, off_delay_s=15, include_uncertain=True)
    t, events = 0, []
    for step, status_code in steps:
        t += step
        r = reading(t, status_code)
        for _ in range(2 if twice_each else 1):
            events.extend(target.evaluate(r))
            events.extend(target.tick(at(t - 5)))
    events.extend(target.tick(at(t + 100)))
    return events


@settings(max_examples=200, deadline=None)
@given(samples)
def test_replays_are_identical_and_duplicates_change_nothing(steps: list[tuple[int, int]]) -> None:
    first = replay(steps)
    assert replay(steps) == first
    assert replay(steps, twice_each=True) == first
