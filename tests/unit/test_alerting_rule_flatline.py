"""The flatline (frozen sensor) rule on a timeline: readings carry explicit source timestamps
(seconds after T0) and assertions say at which source time each alert event happens."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from alerting.rules.base import Context, MachineStates
from alerting.rules.flatline import FlatlineRule, FlatlineRuleConfig
from plantmesh.contracts import (
    STATUS_BAD_SENSOR_FAILURE,
    AlertEvent,
    AlertEventKind,
    Reading,
)
from tests.support.alerting import CLEARED, MILL, RAISED, T0, at, feed, timeline


def reading(
    t: float, value: float | bool, *, signal: str = "pressure", status_code: int = 0
) -> Reading:
    return Reading(
        asset=MILL,
        signal=signal,
        value=value,
        unit="bar",
        status_code=status_code,
        source_ts=at(t),
        gateway_ts=at(t),
    )


def rule(**overrides: Any) -> FlatlineRule:
    params: dict[str, Any] = {
        "name": "pressure-frozen",
        "type": "flatline",
        "issue_type": "frozen-sensor",
        "signal": "pressure",
        "for_s": 60.0,
        "epsilon": 0.01,
    }
    params.update(overrides)
    return FlatlineRule(FlatlineRuleConfig.model_validate(params))


def machine(running: bool, t: float = 0) -> tuple[MachineStates, Context]:
    states = MachineStates()
    states.update(reading(t, running, signal="running"))
    return states, Context("cnc_mill", states)


def polled() -> list[Reading]:
    """Every 10 s: moving until t=100, frozen at 4.2 from t=100 to t=290, moving from t=300."""
    moving = [reading(t, 4.0 + (t % 20) / 100) for t in range(0, 100, 10)]
    frozen = [reading(t, 4.2) for t in range(100, 300, 10)]
    return [*moving, *frozen, reading(300, 4.5), reading(310, 4.4)]


def test_a_polled_signal_frozen_for_for_s_raises_and_clears_when_it_moves() -> None:
    events = feed(rule(), polled())
    assert timeline(events) == [(160.0, RAISED), (300.0, CLEARED)]
    assert events[0].alert_id == events[1].alert_id
    assert events[1].evidence.parameters["moved_to"] == 4.5


def test_raised_evidence() -> None:
    raised = feed(rule(), polled())[0]
    assert raised.evidence.parameters == {
        "frozen_value": 4.2,
        "min": 4.2,
        "max": 4.2,
        "spread": 0.0,
        "since": "2026-01-01T00:01:40Z",
        "frozen_for_s": 60.0,
        "last_reading_ts": "2026-01-01T00:02:40Z",
        "readings_unchanged": 7,
        "epsilon": 0.01,
        "for_s": 60.0,
        "off_delay_s": 0.0,
        "report_by_exception": "false",
        "machine_silence_s": 10.0,
        "raised_by": "reading",
    }
    assert [p.value for p in raised.evidence.points] == [4.2] * 7
    assert raised.evidence.summary.startswith(
        "pressure of plant-a/area/line/mill-01 frozen at 4.2 bar (spread 0.0 <= 0.01) for 60.0 s"
    )


def test_jitter_within_epsilon_is_frozen_but_a_slow_drift_is_not() -> None:
    jitter = [reading(t, 4.2 + (0.005 if t % 20 else 0.0)) for t in range(0, 100, 10)]
    assert timeline(feed(rule(), jitter)) == [(60.0, RAISED)]
    drift = [reading(t, 4.2 + t / 2000) for t in range(0, 200, 10)]  # 0.005 per reading
    assert feed(rule(), drift) == []


def test_silence_is_not_evidence_unless_the_signal_reports_by_exception() -> None:
    polled_rule = rule()
    assert feed(polled_rule, [reading(0, 4.2), reading(10, 4.2)]) == []
    assert polled_rule.tick(at(1000)) == []  # a dead link is the stale rule's job

    rbe = rule(report_by_exception=True)
    assert feed(rbe, [reading(0, 4.2)]) == []
    assert rbe.tick(at(59)) == []
    [raised] = rbe.tick(at(100))
    assert timeline([raised]) == [(60.0, RAISED)]
    assert raised.evidence.parameters["raised_by"] == "watermark"
    assert "silence counted as unchanged" in raised.evidence.summary
    assert rbe.tick(at(200)) == []  # raised once
    assert feed(rbe, [reading(50, 9.0)]) == []  # older than the silence decision: late
    assert timeline(feed(rbe, [reading(250, 4.3)])) == [(250.0, CLEARED)]


def test_report_by_exception_raises_only_while_the_gate_is_open() -> None:
    states, context = machine(False)
    target = rule(report_by_exception=True, gate={"signal": "running"})
    assert feed(target, [reading(0, 4.2)], context) == []
    assert target.tick(at(100)) == []  # stopped: a constant value is expected
    states.update(reading(200, True, signal="running"))
    assert target.tick(at(210)) == []  # gate seen open at 210: counts from there
    assert target.tick(at(269)) == []
    assert timeline(target.tick(at(270))) == [(270.0, RAISED)]


def test_the_gate_with_a_polled_signal_counts_only_running_time() -> None:
    states, context = machine(False)
    target = rule(gate={"signal": "running"})
    assert feed(target, [reading(t, 4.2) for t in range(0, 200, 10)], context) == []
    states.update(reading(195, True, signal="running"))
    events = feed(target, [reading(t, 4.2) for t in range(200, 300, 10)], context)
    assert timeline(events) == [(260.0, RAISED)]
    # The machine stops: the transmitter is still frozen, the alert stays until the value moves.
    states.update(reading(300, False, signal="running"))
    assert feed(target, [reading(t, 4.2) for t in range(300, 400, 10)], context) == []
    assert timeline(feed(target, [reading(400, 3.0)], context)) == [(400.0, CLEARED)]


def test_freezing_again_within_the_off_delay_is_the_same_episode() -> None:
    target = rule(for_s=20, off_delay_s=30)
    frozen = [reading(t, 4.2) for t in range(0, 100, 10)]
    refrozen = [reading(t, 4.5) for t in range(100, 200, 10)]
    assert timeline(feed(target, [*frozen, *refrozen])) == [(20.0, RAISED)]


@pytest.mark.parametrize(
    ("for_s", "expected"),
    [
        (20, []),  # holds again at 120, before the off-delay ends at 130: one episode
        (40, [(130.0, CLEARED), (140.0, RAISED)]),
    ],
)
def test_report_by_exception_silence_and_off_delay_in_event_time_order(
    for_s: float, expected: list[tuple[float, AlertEventKind]]
) -> None:
    target = rule(for_s=for_s, off_delay_s=30, report_by_exception=True)
    assert timeline(feed(target, [reading(0, 4.2)])) == []
    assert timeline(target.tick(at(90))) == [(float(for_s), RAISED)]
    assert feed(target, [reading(100, 4.5)]) == []  # moved: clearing
    assert timeline(target.tick(at(200))) == expected


def test_out_of_order_duplicated_and_late_readings_change_nothing() -> None:
    readings = polled()
    noisy: list[Reading] = []
    for i, r in enumerate(readings):
        noisy += [r, r]
        if i >= 3:
            noisy.append(reading((r.source_ts - T0).total_seconds() - 15, 99.0))
    target = rule()
    assert feed(target, noisy) == feed(rule(), readings)
    assert target.ignored_out_of_order == 2 * len(readings) - 3


def test_bad_quality_readings_are_ignored_and_counted() -> None:
    readings = polled()
    bad = reading(155, 0.0, status_code=STATUS_BAD_SENSOR_FAILURE)
    target = rule()
    events = feed(target, sorted([*readings, bad], key=lambda r: r.source_ts))
    assert timeline(events) == [(160.0, RAISED), (300.0, CLEARED)]
    assert target.ignored_bad_quality == 1


def test_non_numeric_values_are_not_looked_at() -> None:
    target = rule()
    assert feed(target, [reading(t, True) for t in range(0, 200, 10)]) == []


@pytest.mark.parametrize(
    "overrides", [{"for_s": 0}, {"epsilon": -0.1}, {"off_delay_s": -1}, {"for_s": None}]
)
def test_impossible_configurations_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        rule(**overrides)


samples = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=40),  # step to the next reading, s (0: same ts)
        st.sampled_from([1.0, 1.005, 2.0]),
        st.booleans(),  # bad quality
    ),
    max_size=50,
)


def replay(
    steps: list[tuple[int, float, bool]], rbe: bool, *, twice_each: bool = False
) -> list[AlertEvent]:
    """Feed the readings, ticking a watermark 5 s behind each one, as the engine would."""
    target = rule(for_s=30, off_delay_s=15, report_by_exception=rbe)
    t, events = 0, []
    for step, value, bad in steps:
        t += step
        r = reading(t, value, status_code=STATUS_BAD_SENSOR_FAILURE if bad else 0)
        for _ in range(2 if twice_each else 1):
            events.extend(target.evaluate(r))
            events.extend(target.tick(at(t - 5)))
    events.extend(target.tick(at(t + 100)))
    return events


@settings(max_examples=200, deadline=None)
@given(samples, st.booleans())
def test_replays_are_identical_and_duplicates_change_nothing(
    steps: list[tuple[int, float, bool]], rbe: bool
) -> None:
    first = replay(steps, rbe)
    assert replay(steps, rbe) == first
    assert replay(steps, rbe, twice_each=True) == first


def test_report_by_exception_silence_raises_only_while_the_machine_still_reports() -> None:
    # pressure sends 4.2 at t=0 and then nothing. Up to t=100 the machine's other signals
    # arrive (the sensor is frozen); a second machine-wide silence is a comms loss instead.
    flat = rule(report_by_exception=True)
    states = MachineStates()
    context = Context("cnc_mill", states)
    states.saw(MILL.key, at(0))
    events = flat.evaluate(reading(0, 4.2), context)
    for t in range(1, 101):
        states.saw(MILL.key, at(t))  # e.g. temperature, speed
        events += flat.tick(at(t))
    assert timeline(events) == [(60.0, RAISED)]

    gone = rule(report_by_exception=True)
    states = MachineStates()
    context = Context("cnc_mill", states)
    states.saw(MILL.key, at(0))
    events = gone.evaluate(reading(0, 4.2), context)
    for t in range(1, 31):
        states.saw(MILL.key, at(t))
        events += gone.tick(at(t))
    for t in range(31, 200):  # the whole machine is silent from t=31
        events += gone.tick(at(t))
    assert events == []


def test_a_run_counts_again_after_the_machine_was_not_watched() -> None:
    # Polled every 1 s at a constant 4.2, with a 45 s comms loss from t=20: frozen only 60 s
    # of watched time after it (t=65 + 60), not at t=60.
    flat = rule()
    states = MachineStates()
    context = Context("cnc_mill", states)
    events = []
    for t in [*range(0, 20), *range(65, 140)]:
        states.saw(MILL.key, at(t))
        events += flat.evaluate(reading(t, 4.2), context)
    assert timeline(events) == [(125.0, RAISED)]
