"""The ISO 10816 / 20816 zone rule on a timeline: readings carry explicit source timestamps (seconds
after T0), and assertions say at which source time each alert event happens."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from alerting.engine import Engine
from alerting.rules.vibration_zone import VibrationZoneRule, VibrationZoneRuleConfig
from plantmesh.contracts import AlertEvent, AlertEventKind, Quality, Reading, Severity
from tests.support.alerting import CLEARED, MILL, RAISED, T0, at

CLASS_II = "class_ii"


def reading(
    t: float,
    value: float | bool,
    *,
    signal: str = "vibration_velocity",
    quality: Quality = Quality.GOOD,
) -> Reading:
    return Reading(
        asset=MILL,
        signal=signal,
        value=value,
        unit="mm/s",
        quality=quality,
        source_ts=at(t),
        gateway_ts=at(t),
    )


def steps(start: float, stop: float, value: float, step: float = 1.0) -> list[Reading]:
    return [reading(start + i * step, value) for i in range(round((stop - start) / step))]


def config(**overrides: Any) -> VibrationZoneRuleConfig:
    params: dict[str, Any] = {
        "name": "mill-vibration-zone",
        "type": "vibration_zone",
        "issue_type": "vibration-instability",
        "signal": "vibration_velocity",
        "zones": {
            CLASS_II: {"b": 1.4, "c": 2.8, "d": 4.5},
            "default": {"b": 2.3, "c": 4.5, "d": 7.1},
        },
        "deadband": 0.3,
        "on_delay_s": 10.0,
        "off_delay_s": 5.0,
        "severity": "high",
    }
    params.update(overrides)
    return VibrationZoneRuleConfig.model_validate(params)


def rule(**overrides: Any) -> VibrationZoneRule:
    return VibrationZoneRule(config(**overrides))


def feed(
    subject: VibrationZoneRule | Engine,
    readings: Iterable[Reading],
    machine_class: str | None = CLASS_II,
) -> list[AlertEvent]:
    engine = subject if isinstance(subject, Engine) else Engine([subject])
    events: list[AlertEvent] = []
    for r in readings:
        events.extend(engine.process(r, machine_class))
    return events


def timeline(events: Iterable[AlertEvent]) -> list[tuple[float, AlertEventKind, str]]:
    return [((e.at - T0).total_seconds(), e.kind, e.severity.value) for e in events]


def test_zone_c_raises_after_the_on_delay_and_clears_below_the_deadband() -> None:
    # Zone B until 10, zone C (3.0 > 2.8) from 10: raised at 20. 2.6 is below C but inside the
    # deadband (clear level 2.5): still raised. 2.4 from 50: cleared at 55 (off-delay 5 s).
    readings = [
        *steps(0, 10, 2.0),
        *steps(10, 40, 3.0),
        *steps(40, 50, 2.6),
        *steps(50, 60, 2.4),
    ]
    events = feed(rule(), readings)
    assert timeline(events) == [(20.0, RAISED, "high"), (55.0, CLEARED, "high")]
    assert events[0].alert_id == events[1].alert_id
    assert events[0].issue_type == "vibration-instability"


def test_escalation_to_zone_d_is_the_same_alert_raised_again_with_the_higher_severity() -> None:
    readings = [*steps(0, 10, 2.0), *steps(10, 20, 3.0), *steps(20, 60, 5.0), *steps(60, 70, 2.0)]
    events = feed(rule(), readings)
    assert timeline(events) == [
        (20.0, RAISED, "high"),
        (30.0, RAISED, "critical"),
        (65.0, CLEARED, "critical"),
    ]
    assert len({e.alert_id for e in events}) == 1
    raised, escalated, cleared = (e.evidence.parameters for e in events)
    assert raised["zone"] == "C"
    assert "escalated_from" not in raised
    assert escalated["zone"] == "D"
    assert escalated["escalated_from"] == "C"
    assert cleared["zone"] == "D"


def test_straight_into_zone_d_raises_once_in_zone_d() -> None:
    events = feed(rule(), [*steps(0, 10, 2.0), *steps(10, 60, 5.0)])
    assert timeline(events) == [(20.0, RAISED, "critical")]
    assert events[0].evidence.parameters["zone"] == "D"


def test_a_short_zone_d_spike_does_not_escalate_and_swings_do_not_re_raise() -> None:
    readings = [
        *steps(10, 25, 3.0),
        *steps(25, 28, 5.0),  # D for 3 s < on-delay
        *steps(28, 40, 3.0),
        *steps(40, 42, 2.6),  # swings inside the deadband
        *steps(42, 60, 3.2),
    ]
    assert timeline(feed(rule(), readings)) == [(20.0, RAISED, "high")]


def test_raised_evidence() -> None:
    readings = [reading(0, 2.0), reading(10, 3.0), reading(15, 3.4), reading(20, 3.1)]
    [event] = feed(rule(), readings)
    assert event.machine_class == CLASS_II
    ev = event.evidence
    assert ev.parameters == {
        "zone": "C",
        "boundary_a_b": 1.4,
        "boundary_b_c": 2.8,
        "boundary_c_d": 4.5,
        "boundaries_class": CLASS_II,
        "deadband": 0.3,
        "clear_level": 2.5,
        "on_delay_s": 10.0,
        "off_delay_s": 5.0,
        "first_crossing_ts": "2026-01-01T00:00:10Z",
        "max": 3.4,
        "points_total": 3,
        "value": 3.1,
    }
    assert [p.value for p in ev.points] == [3.0, 3.4, 3.1]
    assert ev.summary == (
        "vibration_velocity of plant-a/area/line/mill-01 in ISO zone C (above 2.8 mm/s, "
        "boundaries of 'class_ii'; max 3.4)"
    )
    assert ev.condition == "value > 2.8 for >= 10.0 s"


@pytest.mark.parametrize("machine_class", ["large_motor", None])
def test_a_class_without_entry_uses_the_default_boundaries(machine_class: str | None) -> None:
    assert feed(rule(), steps(0, 30, 4.0), machine_class) == []  # zone C of class II only
    [event] = feed(rule(), steps(0, 30, 5.0), machine_class)
    assert event.evidence.parameters["boundaries_class"] == "default"
    assert event.machine_class == machine_class


def test_a_class_without_entry_and_no_default_is_ignored() -> None:
    only_ii = rule(zones={CLASS_II: {"b": 1.4, "c": 2.8, "d": 4.5}})
    assert feed(only_ii, steps(0, 30, 9.0), "large_motor") == []
    assert only_ii.ignored_unclassified == 30
    assert len(feed(only_ii, steps(0, 30, 9.0), CLASS_II)) == 1


def test_report_by_exception_completes_delays_on_the_watermark() -> None:
    r = rule()
    assert feed(r, [reading(0, 2.0), reading(10, 3.0)]) == []
    assert r.tick(at(19.9)) == []
    assert timeline(r.tick(at(30))) == [(20.0, RAISED, "high")]
    assert r.tick(at(35)) == []
    assert feed(r, [reading(40, 5.0)]) == []
    assert timeline(r.tick(at(60))) == [(50.0, RAISED, "critical")]
    assert feed(r, [reading(70, 1.0)]) == []
    cleared = r.tick(at(80))
    assert timeline(cleared) == [(75.0, CLEARED, "critical")]
    assert r.tick(at(200)) == []


def test_out_of_order_duplicated_and_late_readings_change_nothing() -> None:
    readings = [*steps(0, 10, 2.0), *steps(10, 40, 3.0), *steps(40, 60, 2.0)]
    expected = feed(rule(), readings)
    noisy: list[Reading] = []
    for i, one in enumerate(readings):
        noisy += [one, one]
        if i >= 5:
            noisy.append(readings[i - 5].model_copy(update={"value": 9.9}))  # late, wrong value
    fresh = rule()
    assert feed(fresh, noisy) == expected
    assert fresh.ignored_out_of_order == len(noisy) - len(readings)


def test_bad_quality_readings_are_ignored_and_counted() -> None:
    bad = reading(15, 1.0, quality=Quality.BAD)
    r = rule()
    [raised] = feed(r, [*steps(10, 15, 3.0), bad, *steps(16, 25, 3.0)])
    assert raised.at == at(20)
    assert raised.evidence.parameters["bad_quality_ignored"] == 1
    assert r.ignored_bad_quality == 1


def test_gate_closed_readings_do_not_hold_and_a_stop_clears() -> None:
    r = rule(gate={"signal": "running", "equals": True})
    engine = Engine([r], gates={"running"})
    stopped = [reading(0, False, signal="running"), *steps(1, 40, 5.0)]
    assert feed(engine, stopped) == []
    events = feed(
        engine,
        [
            reading(40, True, signal="running"),
            *steps(41, 60, 3.0),
            reading(60, False, signal="running"),
            *steps(61, 70, 3.0),
        ],
    )
    assert timeline(events) == [(51.0, RAISED, "high"), (66.0, CLEARED, "high")]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"zones": {"default": {"b": 2.8, "c": 1.4, "d": 4.5}}}, "must ascend"),
        ({"zones": {"default": {"b": 1.4, "c": 2.8, "d": 2.8}}}, "must ascend"),
        ({"deadband": 2.8}, "could never clear"),
        ({"severity": "critical", "severity_zone_d": "high"}, "zone D must not page less"),
        ({"zones": {}}, "at least 1"),
        ({"zones": {"default": {"b": -1, "c": 2.8, "d": 4.5}}}, "greater than 0"),
        ({"zone_d": 4.5}, "Extra inputs"),
    ],
)
def test_impossible_configurations_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(**overrides)


def test_severity_defaults_from_the_identity_and_zone_d_is_never_lower() -> None:
    r = VibrationZoneRule(config(severity=None))
    assert r.identity.severity is Severity.MEDIUM
    assert r.severity_zone_d is Severity.CRITICAL


# --- properties ---------------------------------------------------------------------------------
STEPS = st.lists(
    st.tuples(
        st.integers(min_value=-3, max_value=8),  # negative: an out-of-order reading
        st.floats(min_value=0.0, max_value=8.0, allow_nan=False),
        st.booleans(),  # tick the watermark after this reading
    ),
    max_size=60,
)


def replay(
    script: list[tuple[int, float, bool]], *, duplicate: bool = False
) -> list[dict[str, Any]]:
    engine = Engine([rule()])
    t, out = 0, []
    for step, value, tick in script:
        t += step
        r = reading(t, round(value, 2))
        for _ in range(2 if duplicate else 1):
            out += engine.process(r, CLASS_II)
        if tick:
            out += engine.advance()
    return [e.model_dump() for e in out]


@settings(max_examples=150, deadline=None)
@given(STEPS)
def test_replay_is_deterministic_and_duplicates_change_nothing(
    script: list[tuple[int, float, bool]],
) -> None:
    first = replay(script)
    assert replay(script) == first
    assert replay(script, duplicate=True) == first
