"""The growing-oscillation rule on a timeline: readings carry explicit source timestamps (seconds
after T0, which is aligned to the minute, so 10 s and 60 s windows start at multiples of their
length), and assertions say at which source time each alert event happens."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from alerting.engine import Engine
from alerting.rules.oscillation import OscillationRule, OscillationRuleConfig
from plantmesh.contracts import AlertEvent, Quality, Reading
from tests.support.alerting import CLEARED, MILL, RAISED, at, timeline


def reading(
    t: float, value: float | bool, *, signal: str = "vibration", quality: Quality = Quality.GOOD
) -> Reading:
    return Reading(
        asset=MILL, signal=signal, value=value, quality=quality, source_ts=at(t), gateway_ts=at(t)
    )


def rule(**overrides: Any) -> OscillationRule:
    params: dict[str, Any] = {
        "name": "mill-oscillation",
        "type": "oscillation",
        "issue_type": "vibration-instability",
        "signal": "vibration",
        "window_s": 60.0,
        "min_amplitude": 1.0,
    }
    params.update(overrides)
    return OscillationRule(OscillationRuleConfig.model_validate(params))


def square(window: int, half: float, *, length: float = 10.0) -> list[Reading]:
    """Two readings in window `window` (of `length` s): -half then +half, peak to peak 2*half."""
    start = window * length
    return [reading(start + 1, -half), reading(start + 6, half)]


def squares(halves: Iterable[float], first: int = 0) -> list[Reading]:
    return [r for n, half in enumerate(halves, start=first) for r in square(n, half)]


def small(**overrides: Any) -> OscillationRule:
    """10 s windows of two readings each: amplitudes are exactly the square waves'."""
    return rule(**{"window_s": 10.0, "min_points": 2, "min_amplitude": 5.0, **overrides})


def feed(subject: OscillationRule | Engine, readings: Iterable[Reading]) -> list[AlertEvent]:
    engine = subject if isinstance(subject, Engine) else Engine([subject])
    return [event for r in readings for event in engine.process(r)]


def sine(
    amplitude_at: Callable[[float], float], stop: int, period_s: float = 10.0
) -> list[Reading]:
    """A sine sampled every second, its amplitude a function of time."""
    return [reading(t, amplitude_at(t) * math.sin(2 * math.pi * t / period_s)) for t in range(stop)]


# --- the decision on known answers --------------------------------------------------------------
def test_a_sine_growing_30_percent_per_window_raises_once_and_clears_when_it_decays() -> None:
    # 10 minutes growing x1.3 per 60 s window from 0.1, then 10 minutes decaying x0.7 per window.
    # Peak to peak (sampled at 1 s, period 10 s: 1.90 x amplitude) first reaches 1.0 in the window
    # 360-420 s, after >= 3 growths of ~1.3: raised at its end, 420 s; it falls back below 1.0 in
    # the window 780-840 s: cleared at 840 s. The swings in between raise nothing more.
    def amplitude(t: float) -> float:
        top = 0.1 * 1.3**10
        return 0.1 * math.pow(1.3, t / 60) if t < 600 else top * math.pow(0.7, (t - 600) / 60)

    r = rule()
    events = feed(r, sine(amplitude, 1200))
    events += r.tick(at(1200))
    assert timeline(events) == [(420.0, RAISED), (840.0, CLEARED)]
    raised, cleared = events
    assert raised.alert_id == cleared.alert_id
    params = raised.evidence.parameters
    assert params["measure"] == "peak_to_peak"
    assert [params[f"window_start_w{n}"] for n in range(1, 5)] == [
        "2026-01-01T00:03:00Z",
        "2026-01-01T00:04:00Z",
        "2026-01-01T00:05:00Z",
        "2026-01-01T00:06:00Z",
    ]
    assert all(1.2 <= float(params[f"growth_w{n}"]) <= 1.4 for n in range(2, 5))
    assert float(params["amplitude_w4"]) >= 1.0


def test_a_constant_amplitude_oscillation_raises_nothing() -> None:
    r = rule()
    assert feed(r, sine(lambda t: 2.0, 1200)) == []
    assert r.tick(at(2000)) == []


def test_growing_noise_below_min_amplitude_raises_nothing() -> None:
    noise = random.Random(7)
    readings = [reading(t, noise.uniform(-1, 1) * 0.01 * 1.3 ** (t / 60)) for t in range(900)]
    assert feed(rule(), readings) == []  # it grows 30 % per window, but never to 1.0 peak to peak
    assert len(feed(rule(min_amplitude=0.01), readings)) >= 1  # the growth alone would page


def test_std_measure() -> None:
    # std of a sine is amplitude / sqrt(2): about 0.1 x 1.3^5.5 / 1.41 = 0.30 in the window
    # 300-360 s, 0.39 in 360-420 s: with min_amplitude 0.35, raised at 420 s.
    events = feed(
        rule(measure="std", min_amplitude=0.35), sine(lambda t: 0.1 * 1.3 ** (t / 60), 600)
    )
    assert timeline(events) == [(420.0, RAISED)]
    assert events[0].evidence.parameters["measure"] == "std"


def test_raised_evidence_lists_the_windows_and_growths() -> None:
    readings = squares([1.0, 1.5, 2.25, 3.375])  # peak to peak 2, 3, 4.5, 6.75
    [event] = feed(small(), [*readings, reading(41, 0.0)])
    assert event.at == at(40)
    assert event.machine_class is None
    ev = event.evidence
    assert ev.parameters == {
        "measure": "peak_to_peak",
        "window_s": 10.0,
        "min_points": 2,
        "growth_windows": 3,
        "min_growth": 1.2,
        "min_amplitude": 5.0,
        "clear_below": 5.0,
        "off_delay_s": 0.0,
        "max_amplitude": 6.75,
        "amplitude_w1": 2.0,
        "window_start_w1": "2026-01-01T00:00:00Z",
        "amplitude_w2": 3.0,
        "window_start_w2": "2026-01-01T00:00:10Z",
        "amplitude_w3": 4.5,
        "window_start_w3": "2026-01-01T00:00:20Z",
        "amplitude_w4": 6.75,
        "window_start_w4": "2026-01-01T00:00:30Z",
        "growth_w2": 1.5,
        "growth_w3": 1.5,
        "growth_w4": 1.5,
        "points_total": 2,
    }
    assert [p.value for p in ev.points] == [-3.375, 3.375]  # the window that decided
    assert ev.summary == (
        "vibration of plant-a/area/line/mill-01: peak_to_peak amplitude growing over windows "
        "(2.0, 3.0, 4.5, 6.75)"
    )
    assert ev.condition == "3 successive window growths >= x1.2 and amplitude >= 5.0"


def test_growth_below_min_growth_in_one_window_does_not_raise() -> None:
    assert feed(small(), squares([1.0, 1.5, 1.7, 3.0, 3.0])) == []  # 1.7 / 1.5 = 1.13


def test_quiet_series_closes_its_window_on_the_watermark() -> None:
    r = small()
    assert feed(r, squares([1.0, 1.5, 2.25, 3.375])) == []
    assert r.tick(at(39.9)) == []
    [by_tick] = r.tick(at(40))
    [by_reading] = feed(small(), [*squares([1.0, 1.5, 2.25, 3.375]), reading(55, 0.0)])
    assert by_tick == by_reading
    assert feed(r, [reading(39.5, 100.0)]) == []  # its window is closed: late
    assert r.ignored_late == 1


def test_clears_on_the_first_window_below_clear_below_by_default() -> None:
    halves = [1.0, 1.5, 2.25, 3.375, 4.0, 2.0, 4.0]  # p2p 8, then 4 < 5, then 8 again
    events = feed(small(), [*squares(halves), reading(71, 0.0)])
    assert timeline(events) == [(40.0, RAISED), (60.0, CLEARED)]  # growth back is not regrowth


def test_clear_windows_needs_consecutive_windows_below() -> None:
    halves = [1.0, 1.5, 2.25, 3.375, 2.0, 4.0, 2.0, 2.0]
    events = feed(small(clear_windows=2), [*squares(halves), reading(81, 0.0)])
    assert timeline(events) == [(40.0, RAISED), (80.0, CLEARED)]


def test_clear_below_can_sit_under_min_amplitude() -> None:
    halves = [1.0, 1.5, 2.25, 3.375, 2.0, 1.0]  # p2p 4 is above clear_below 3, p2p 2 below
    events = feed(small(clear_below=3.0), [*squares(halves), reading(61, 0.0)])
    assert timeline(events) == [(40.0, RAISED), (60.0, CLEARED)]


def test_a_window_without_enough_points_or_a_gap_restarts_the_run() -> None:
    thin = [*squares([1.0, 1.5]), reading(21, -2.25), *squares([2.25, 3.375, 5.0], first=3)]
    assert feed(small(), [*thin, reading(61, 0.0)]) == []
    gap = [*squares([1.0, 1.5]), *squares([2.25, 3.375, 5.0], first=3)]
    assert feed(small(), [*gap, reading(61, 0.0)]) == []
    longer = [*squares([1.0, 1.5]), *squares([2.25, 3.375, 5.0, 7.5], first=3)]
    assert timeline(feed(small(), [*longer, reading(71, 0.0)])) == [(70.0, RAISED)]


def test_out_of_order_duplicated_and_bad_readings_change_nothing() -> None:
    readings = [*squares([1.0, 1.5, 2.25, 3.375, 2.0]), reading(51, 0.0)]
    expected = feed(small(), readings)
    noisy: list[Reading] = []
    for i, r in enumerate(readings):
        noisy += [r, r]
        if i >= 1:
            noisy.append(readings[i - 1].model_copy(update={"value": 99.0}))
    assert feed(small(), noisy) == expected
    bad = reading(33, 50.0, quality=Quality.BAD)
    [raised, _] = feed(small(), [*readings[:7], bad, *readings[7:]])
    assert raised.evidence.parameters["bad_quality_ignored"] == 1
    assert raised.evidence.parameters["amplitude_w4"] == 6.75


def test_gate_closed_readings_do_not_count_and_a_stop_ends_the_alert() -> None:
    r = small(gate={"signal": "running"})
    engine = Engine([r], gates={"running"})
    stopped = [reading(0, False, signal="running"), *squares([1, 1.5, 2.25, 3.375, 5])]
    assert feed(engine, stopped) == []  # growing, but the machine is not running
    events = feed(
        engine,
        [
            reading(100, True, signal="running"),
            *squares([1.0, 1.5, 2.25, 3.375, 5.0], first=10),
            reading(146, False, signal="running"),
            reading(147, 5.0),
        ],
    )
    assert timeline(events) == [(140.0, RAISED), (147.0, CLEARED)]
    assert "gate closed" in events[1].evidence.summary


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"clear_below": 2.0}, "above min_amplitude"),
        ({"off_delay_s": 10, "clear_windows": 2}, "at most one"),
        ({"min_growth": 1.0}, "greater than 1"),
        ({"min_points": 1}, "greater than or equal to 2"),
        ({"window_s": 0}, "greater than or equal to 0.001"),
        ({"measure": "rms"}, "peak_to_peak"),
        ({"growth": 3}, "Extra inputs"),
    ],
)
def test_impossible_configurations_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rule(**overrides)


def test_min_amplitude_is_required() -> None:
    with pytest.raises(ValidationError, match="min_amplitude"):
        OscillationRuleConfig.model_validate(
            {"name": "o", "type": "oscillation", "issue_type": "x", "signal": "vibration"}
        )


# --- properties ---------------------------------------------------------------------------------
STEPS = st.lists(
    st.tuples(
        st.integers(min_value=-4, max_value=9),  # negative: an out-of-order reading
        st.floats(min_value=-10.0, max_value=10.0, allow_nan=False),
        st.booleans(),  # tick the watermark after this reading
    ),
    max_size=80,
)


def replay(
    script: list[tuple[int, float, bool]], *, duplicate: bool = False
) -> list[dict[str, Any]]:
    engine = Engine([small(min_amplitude=2.0, growth_windows=2)])
    t, out = 0, []
    for step, value, tick in script:
        t += step
        r = reading(t, round(value, 2))
        for _ in range(2 if duplicate else 1):
            out += engine.process(r)
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
