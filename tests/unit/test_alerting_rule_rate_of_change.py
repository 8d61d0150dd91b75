"""The rate-of-change rule on a timeline: readings carry explicit source timestamps (seconds
after T0) and assertions say at which source time each alert event happens."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from alerting.rules.base import Context, MachineStates
from alerting.rules.rate_of_change import RateOfChangeRule, RateOfChangeRuleConfig
from plantmesh.contracts import (
    STATUS_BAD_SENSOR_FAILURE,
    AlertEvent,
    Reading,
)
from tests.support.alerting import CLEARED, MILL, RAISED, T0, at, feed, timeline


def reading(
    t: float, value: float | bool, *, signal: str = "bearing_temp", status_code: int = 0
) -> Reading:
    return Reading(
        asset=MILL,
        signal=signal,
        value=value,
        unit="degC",
        status_code=status_code,
        source_ts=at(t),
        gateway_ts=at(t),
    )


def rule(**overrides: Any) -> RateOfChangeRule:
    params: dict[str, Any] = {
        "name": "bearing-heating-fast",
        "type": "rate_of_change",
        "issue_type": "bearing-overtemperature",
        "signal": "bearing_temp",
        "window_s": 60.0,
        "per": "minute",
        "rising_above": 3.0,
        "deadband": 0.5,
        "on_delay_s": 20.0,
    }
    params.update(overrides)
    return RateOfChangeRule(RateOfChangeRuleConfig.model_validate(params))


def heating() -> list[Reading]:
    """Every 10 s: 50 degC until t=100, +1 degC per 10 s (6 degC/min) until t=200, then 60."""
    return [reading(t, 50 + min(max(t - 100, 0), 100) / 10) for t in range(0, 400, 10)]


def test_raises_after_the_on_delay_and_clears_through_the_deadband() -> None:
    # Rate over the last 60 s = v(t) - v(t-60) per minute: 4 at t=140 (> 3: pending), raised at
    # t=160; after the ramp it falls to 3 at t=230 (>= 2.5: still raised), 2 at t=240 -> cleared.
    events = feed(rule(), heating())
    assert timeline(events) == [(160.0, RAISED), (240.0, CLEARED)]
    assert events[0].alert_id == events[1].alert_id
    assert events[0].issue_type == "bearing-overtemperature"


def test_raised_evidence_names_the_rate_its_limit_and_its_window() -> None:
    raised = feed(rule(), heating())[0]
    ev = raised.evidence
    assert ev.parameters == {
        "direction": "rising",
        "limit": 3.0,
        "rate_unit": "degC/min",
        "per": "minute",
        "deadband": 0.5,
        "window_s": 60.0,
        "min_points": 3,
        "on_delay_s": 20.0,
        "off_delay_s": 0.0,
        "first_crossing_ts": "2026-01-01T00:02:20Z",
        "peak_rate": 6.0,
        "points_in_window": 7,
        "rate": 6.0,
        "window_first_ts": "2026-01-01T00:01:40Z",
        "window_first_value": 50.0,
        "window_last_ts": "2026-01-01T00:02:40Z",
        "window_last_value": 56.0,
        "window_span_s": 60.0,
    }
    assert [p.value for p in ev.points] == [50.0, 51.0, 52.0, 53.0, 54.0, 55.0, 56.0]
    assert ev.summary == (
        "bearing_temp of plant-a/area/line/mill-01 rising at 6.0 degC/min "
        "(limit 3.0 degC/min) over 60.0 s"
    )
    assert "rate > 3.0 degC/min" in ev.condition


def test_cleared_evidence() -> None:
    cleared = feed(rule(), heating())[1]
    params = cleared.evidence.parameters
    assert params["rate"] == 2.0
    assert params["clear_level"] == 2.5
    assert params["raised_at"] == "2026-01-01T00:02:40Z"
    assert params["peak_rate"] == 6.0


def test_falling_per_second_with_an_off_delay() -> None:
    # Pressure bleeding off at 1 bar/s from t=10 to t=20, then steady.
    values = [(t, 100.0 - min(max(t - 10, 0), 10)) for t in range(0, 60)]
    target = rule(
        signal="pressure",
        window_s=4,
        per="second",
        rising_above=None,
        falling_below=-0.5,
        deadband=0,
        on_delay_s=2,
        off_delay_s=3,
    )
    events = feed(target, [reading(t, v, signal="pressure") for t, v in values])
    # Rate over 4 s: -0.25 at t=11, -0.5 at t=12 (not below), -0.75 at t=13 -> pending; raised at
    # t=15. -0.5 at t=22 still holds (a raised alert holds until strictly inside the limit),
    # -0.25 at t=23 does not -> cleared at t=26 after the 3 s off-delay.
    assert timeline(events) == [(15.0, RAISED), (26.0, CLEARED)]
    assert events[0].evidence.parameters["rate_unit"] == "degC/s"
    assert events[0].evidence.parameters["direction"] == "falling"


def test_rising_and_falling_are_separate_alerts() -> None:
    up = [reading(t, float(t)) for t in range(0, 100, 10)]  # +6/min
    down = [reading(t, 90.0 - (t - 90)) for t in range(100, 200, 10)]  # -6/min
    events = feed(rule(falling_below=-3.0, on_delay_s=0), [*up, *down])
    kinds = [(e.kind, e.evidence.parameters["direction"]) for e in events]
    assert kinds == [
        (RAISED, "rising"),
        (CLEARED, "rising"),
        (RAISED, "falling"),
    ]
    assert events[0].alert_id != events[2].alert_id


def test_a_thin_window_has_no_rate() -> None:
    # A big jump, but only 2 points in the window (min_points 3), then 3 points spanning 20 s of
    # a 60 s window (less than half): no rate, no alert.
    target = rule(on_delay_s=0)
    assert feed(target, [reading(0, 50.0), reading(10, 90.0)]) == []
    target = rule(on_delay_s=0)
    assert feed(target, [reading(0, 50.0), reading(10, 70.0), reading(20, 90.0)]) == []
    assert timeline(feed(target, [reading(30, 110.0)])) == [(30.0, RAISED)]


def test_the_on_delay_completes_on_the_watermark() -> None:
    target = rule()
    # 6 degC/min from the first window spanning half of window_s: pending at t=30.
    assert feed(target, [reading(t, float(t)) for t in range(0, 50, 10)]) == []
    assert target.tick(at(49)) == []
    assert timeline(target.tick(at(100))) == [(50.0, RAISED)]
    assert target.tick(at(200)) == []  # raised once


def test_out_of_order_duplicated_and_late_readings_change_nothing() -> None:
    readings = heating()
    noisy: list[Reading] = []
    for i, r in enumerate(readings):
        noisy.append(r)
        noisy.append(r)  # duplicate
        if i >= 3:
            late = reading((r.source_ts - T0).total_seconds() - 25, 200.0)  # late and wild
            noisy.append(late)
    target = rule()
    assert feed(target, noisy) == feed(rule(), readings)
    assert target.ignored_out_of_order == len(readings) + len(readings) - 3


def test_bad_quality_readings_are_ignored_and_counted() -> None:
    readings = heating()
    spike = reading(95, 500.0, status_code=STATUS_BAD_SENSOR_FAILURE)
    bad_in_episode = reading(165, 500.0, status_code=STATUS_BAD_SENSOR_FAILURE)
    target = rule()
    events = feed(target, sorted([*readings, spike, bad_in_episode], key=lambda r: r.source_ts))
    assert timeline(events) == [(160.0, RAISED), (240.0, CLEARED)]
    assert target.ignored_bad_quality == 2
    assert events[1].evidence.parameters["bad_quality_ignored"] == 1


def test_the_gate() -> None:
    states = MachineStates()
    context = Context("cnc_mill", states)
    target = rule(gate={"signal": "running"})
    states.update(reading(0, False, signal="running"))
    assert feed(target, heating()[:20], context) == []  # stopped: heating up is not a fault
    states.update(reading(195, True, signal="running"))
    events = feed(target, heating()[20:], context)
    assert timeline(events) == [(220.0, RAISED), (240.0, CLEARED)]
    assert events[0].evidence.parameters["gate"] == "running == True"


@pytest.mark.parametrize(
    "overrides",
    [
        {"rising_above": None},
        {"rising_above": -1.0},
        {"falling_below": 1.0},
        {"per": "hour"},
        {"min_points": 1},
        {"window_s": 0},
        {"deadband": -1},
    ],
)
def test_impossible_configurations_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        rule(**overrides)


def test_per_is_required() -> None:
    params = rule().config.model_dump()
    del params["per"]
    with pytest.raises(ValidationError):
        RateOfChangeRuleConfig.model_validate(params)


samples = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=30),  # step to the next reading, s (0: a duplicate ts)
        st.integers(min_value=-50, max_value=50),
        st.booleans(),  # bad quality
    ),
    max_size=60,
)


def replay(steps: list[tuple[int, int, bool]], *, twice_each: bool = False) -> list[AlertEvent]:
    target = rule(falling_below=-3.0, on_delay_s=10, off_delay_s=10, min_points=2)
    t, events = 0, []
    for step, value, bad in steps:
        t += step
        r = reading(t, float(value), status_code=STATUS_BAD_SENSOR_FAILURE if bad else 0)
        for _ in range(2 if twice_each else 1):
            events.extend(target.evaluate(r))
    events.extend(target.tick(at(t + 100)))
    return events


@settings(max_examples=200, deadline=None)
@given(samples)
def test_replays_are_identical_and_duplicates_change_nothing(
    steps: list[tuple[int, int, bool]],
) -> None:
    first = replay(steps)
    assert replay(steps) == first
    assert replay(steps, twice_each=True) == first
