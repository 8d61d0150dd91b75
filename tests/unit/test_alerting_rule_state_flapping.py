"""The state-flapping rule on a timeline (times in seconds of source time from T0)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from alerting.rules.base import Context, MachineStates, StateGate
from alerting.rules.state_flapping import StateFlappingRule, StateFlappingRuleConfig
from plantmesh.contracts import STATUS_BAD_SENSOR_FAILURE, AlertEvent, Reading
from tests.support.alerting import MILL, T0, at, feed

StateValue = bool | float | str


def reading(t: float, value: StateValue, signal: str = "running", **kw: object) -> Reading:
    return Reading.model_validate(
        {"asset": MILL, "signal": signal, "value": value, "source_ts": at(t), "gateway_ts": at(t)}
        | kw
    )


def make(**kw: object) -> StateFlappingRule:
    config = {"name": "flap", "issue_type": "state-flapping", "signal": "running"} | kw
    config.setdefault("type", "state_flapping")
    return StateFlappingRule(StateFlappingRuleConfig.model_validate(config))


def timeline(events: list[AlertEvent]) -> list[tuple[str, float]]:
    return [(e.kind.value, (e.at - T0).total_seconds()) for e in events]


def toggles(times: Iterable[float], start: bool = True) -> list[Reading]:
    """A reading at each time, alternating the value: every reading after the first flips."""
    return [reading(t, start if i % 2 == 0 else not start) for i, t in enumerate(times)]


def test_n_transitions_in_the_window_raise_once_then_age_out_on_tick() -> None:
    rule = make(min_transitions=4, window_s=100)  # clear_below 2
    # First reading at 0 is no transition; flips at 10, 20, 30 (3), 40 (4: raise).
    events = feed(rule, toggles([0, 10, 20, 30, 40, 50, 60]))
    assert timeline(events) == [("raised", 40)]
    raised = events[0]
    assert raised.issue_type == "state-flapping"
    assert raised.evidence.parameters["transitions"] == 4
    assert raised.evidence.parameters["min_transitions"] == 4
    assert raised.evidence.parameters["window_s"] == 100
    assert [p.value for p in raised.evidence.points] == [0.0, 1.0, 0.0, 1.0]
    assert [p.ts for p in raised.evidence.points] == [at(10), at(20), at(30), at(40)]
    # Quiet from 60: transitions at 10..60 (6); the count falls below 2 when the 5th oldest
    # (50) leaves the window, at 150, with no reading needed.
    assert rule.tick(at(149)) == []
    (cleared,) = rule.tick(at(400))
    assert timeline([cleared]) == [("cleared", 150)]
    assert cleared.alert_id == raised.alert_id
    assert cleared.evidence.parameters["transitions"] == 1
    assert cleared.evidence.parameters["peak_transitions"] == 6
    assert rule.tick(at(1000)) == []


def test_the_clear_is_the_same_whether_a_tick_or_a_reading_finds_it() -> None:
    by_tick, by_reading = (
        make(min_transitions=4, window_s=100),
        make(min_transitions=4, window_s=100),
    )
    flaps = toggles([0, 10, 20, 30, 40])
    first = feed(by_tick, flaps) + by_tick.tick(at(120)) + by_tick.tick(at(500))
    second = feed(by_reading, [*flaps, reading(500, True)])
    assert timeline(first) == timeline(second) == [("raised", 40), ("cleared", 130)]
    assert first == second


def test_hysteresis_keeps_a_long_burst_one_alert() -> None:
    rule = make(min_transitions=4, window_s=100)
    # A flip every 30 s for 20 minutes: always 3 or 4 in the window, never below clear_below 2.
    events = feed(rule, toggles(range(0, 1200, 30)))
    assert timeline(events) == [("raised", 120)]


def test_a_steady_state_or_slow_changes_never_raise() -> None:
    rule = make(min_transitions=3, window_s=100)
    steady = [reading(t, True) for t in range(0, 3600, 5)]
    slow = toggles(range(3600, 7200, 60))  # at most 2 per 100 s
    assert feed(rule, [*steady, *slow]) == []
    assert rule.tick(at(9000)) == []


def test_text_states_map_to_a_stable_index_listed_in_the_parameters() -> None:
    rule = make(min_transitions=3, window_s=60, signal="mode")
    values = ["auto", "manual", "auto", "fault"]
    (raised,) = feed(
        rule, [reading(t, v, signal="mode") for t, v in zip([0, 1, 2, 3], values, strict=True)]
    )
    assert [p.value for p in raised.evidence.points] == [1.0, 0.0, 2.0]
    params = raised.evidence.parameters
    assert (params["state_0"], params["state_1"], params["state_2"]) == ("auto", "manual", "fault")


def test_true_and_one_are_different_states_and_numbers_count() -> None:
    rule = make(min_transitions=2, window_s=60, signal="state")
    (raised,) = feed(
        rule, [reading(0, 1.0, "state"), reading(1, True, "state"), reading(2, 2.0, "state")]
    )
    assert [p.value for p in raised.evidence.points] == [1.0, 2.0]


def test_out_of_order_duplicated_and_bad_readings_change_nothing() -> None:
    flaps = toggles([0, 10, 20, 30, 40])
    clean = make(min_transitions=4, window_s=100)
    expected = feed(clean, flaps) + clean.tick(at(500))
    noisy = make(min_transitions=4, window_s=100)
    bad = reading(25, False, status_code=STATUS_BAD_SENSOR_FAILURE)
    mixed = [flaps[0], flaps[1], flaps[1], flaps[0], flaps[2], bad, flaps[3], flaps[2], flaps[4]]
    got = feed(noisy, mixed) + noisy.tick(at(500))
    assert timeline(got) == timeline(expected) == [("raised", 40), ("cleared", 130)]
    assert [e.alert_id for e in got] == [e.alert_id for e in expected]
    assert [e.evidence.points for e in got] == [e.evidence.points for e in expected]
    assert got[0].evidence.parameters["bad_quality_ignored"] == 1
    assert noisy.ignored_out_of_order == 3
    assert noisy.ignored_bad_quality == 1


def test_a_closed_gate_holds_nothing_and_clears_a_raised_episode() -> None:
    rule = make(min_transitions=3, window_s=100, signal="mode", gate=StateGate(signal="auto"))
    states = MachineStates()
    context = Context("cnc_mill", states)
    states.update(reading(0, True, "auto"))
    values = ["a", "b", "a", "b"]
    events = feed(
        rule, [reading(t, v, "mode") for t, v in zip([1, 2, 3, 4], values, strict=True)], context
    )
    assert timeline(events) == [("raised", 4)]
    states.update(reading(5, False, "auto"))
    events = feed(rule, [reading(6, "a", "mode"), reading(7, "b", "mode")], context)
    assert timeline(events) == [("cleared", 6)]
    assert events[0].machine_class == "cnc_mill"


def test_clear_below_above_min_transitions_is_refused() -> None:
    with pytest.raises(ValidationError, match="clear_below"):
        make(min_transitions=4, clear_below=5)
    assert make(min_transitions=7).clear_below == 3
    assert make(min_transitions=7, clear_below=7).clear_below == 7


# --- replay property --------------------------------------------------------------------------
steps = st.lists(
    st.tuples(st.integers(0, 40), st.sampled_from([True, False, "x", "y", 1.0])), max_size=60
)


def run(items: list[tuple[int, StateValue]], twice: bool = False) -> list[AlertEvent]:
    rule = make(min_transitions=3, window_s=25)
    events: list[AlertEvent] = []
    t = 0
    for i, (dt, value) in enumerate(items):
        t += dt
        r = reading(t, value)
        for _ in range(2 if twice else 1):
            events += rule.evaluate(r)
        if i % 7 == 6:
            events += rule.tick(at(t))
    return events + rule.tick(at(t + 1000))


@settings(max_examples=150, deadline=None)
@given(steps)
def test_replay_is_identical_and_duplicates_change_nothing(
    items: list[tuple[int, StateValue]],
) -> None:
    once = run(items)
    assert run(items) == once
    assert run(items, twice=True) == once
    kinds = [e.kind.value for e in once]
    assert kinds == ["raised", "cleared"] * (len(kinds) // 2)


@settings(max_examples=100, deadline=None)
@given(steps, st.sets(st.integers(0, 60)))
def test_when_ticks_happen_does_not_change_the_events(
    items: list[tuple[int, StateValue]], tick_after: set[int]
) -> None:
    def go(ticks: set[int]) -> list[AlertEvent]:
        rule = make(min_transitions=3, window_s=25)
        events: list[AlertEvent] = []
        t = 0
        for i, (dt, value) in enumerate(items):
            t += dt
            events += rule.evaluate(reading(t, value))
            if i in ticks:
                events += rule.tick(at(t))
        return events + rule.tick(at(t + 1000))

    assert go(tick_after) == go(set())
