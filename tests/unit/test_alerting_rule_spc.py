"""The SPC rule on a timeline (one reading per second of source time unless said otherwise):
a learned robust baseline, EWMA / CUSUM / Western Electric charts, one alert per episode."""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from alerting.rules.base import Context, MachineStates
from alerting.rules.spc import SpcRule, SpcRuleConfig
from alerting.rules.spc_baseline import Baseline
from alerting.rules.spc_charts import WE_HISTORY, western_electric, western_electric_any
from plantmesh.contracts import Quality, Reading
from tests.support.alerting import (
    CLEARED,
    MILL,
    RAISED,
    T0,
    assert_replay_and_duplicates_change_nothing,
    at,
    feed,
    timeline,
)

KEY = f"{MILL.key}/spindle_temp"
LEARNED = 601  # learn_s 600 at 1 Hz: the readings of t = 0..600


def reading(
    t: float, value: float | bool, signal: str = "spindle_temp", quality: Quality = Quality.GOOD
) -> Reading:
    return Reading(
        asset=MILL,
        signal=signal,
        value=value,
        unit="degC",
        quality=quality,
        source_ts=at(t),
        gateway_ts=at(t),
    )


def rule(**overrides: Any) -> SpcRule:
    params: dict[str, Any] = {
        "name": "spindle-drift",
        "type": "spc",
        "issue_type": "process-drift",
        "signal": "spindle_temp",
    }
    params.update(overrides)
    return SpcRule(SpcRuleConfig.model_validate(params))


def noise(seed: int, n: int, start: float = 0, mean: float = 10.0) -> list[Reading]:
    rng = random.Random(seed)
    return [reading(start + i, rng.gauss(mean, 1.0)) for i in range(n)]


def steady(start: float, n: int, mean: float = 10.0) -> list[Reading]:
    """A deterministic in-control series: median `mean`, MAD 0.5 (sigma 0.7413)."""
    cycle = [-1.0, 0.0, 1.0, 0.5, -0.5]
    return [reading(start + i, mean + cycle[i % 5]) for i in range(n)]


def known(r: SpcRule, centre: float = 10.0, sigma: float = 1.0) -> SpcRule:
    r.set_baseline(KEY, Baseline(centre, sigma, 30, at(-100), at(-1)))
    return r


def zs(values: Iterable[float], start: float = 0) -> list[Reading]:
    """Readings whose z against the known baseline (10 +/- 1) are `values`."""
    return [reading(start + i, 10.0 + z) for i, z in enumerate(values)]


QUIET = [0.1, -0.1] * 10  # 20 points near the centre: no chart signals


# --- learning ---------------------------------------------------------------------------------


def test_baseline_is_learned_over_learn_s_robustly_and_then_frozen() -> None:
    r = rule()
    assert feed(r, noise(1, LEARNED - 1)) == []
    assert r.baseline(KEY) is None  # 600 readings span 599 s: still learning
    feed(r, noise(1, LEARNED)[-1:])
    baseline = r.baseline(KEY)
    assert baseline is not None
    assert (baseline.points, baseline.frozen) == (LEARNED, True)
    assert (baseline.learned_from, baseline.learned_to) == (at(0), at(600))
    assert baseline.centre == pytest.approx(10.0, abs=0.1)
    assert baseline.sigma == pytest.approx(1.0, abs=0.1)


def test_learning_waits_for_min_points() -> None:
    r = rule(learn_s=10)
    feed(r, [reading(t * 5, 10.0 + t % 2) for t in range(29)])  # 140 s, 29 readings
    assert r.baseline(KEY) is None
    feed(r, [reading(29 * 5, 10.0)])
    assert r.baseline(KEY) is not None


def test_a_10_sigma_outlier_while_learning_does_not_move_the_baseline() -> None:
    clean = noise(7, 30)
    spiked = [*clean[:15], reading(15, 20.0), *clean[16:]]  # 10 sigma
    a, b = rule(learn_s=29), rule(learn_s=29)
    feed(a, clean)
    feed(b, spiked)
    base_a, base_b = a.baseline(KEY), b.baseline(KEY)
    assert base_a is not None
    assert base_b is not None
    assert base_b.centre == pytest.approx(base_a.centre, abs=0.15)
    assert base_b.sigma == pytest.approx(base_a.sigma, rel=0.2)
    assert base_b.sigma < 1.5  # a mean/stdev baseline would say ~2


def test_a_constant_series_falls_back_to_min_sigma() -> None:
    r = rule(learn_s=29, min_sigma=0.01)
    feed(r, [reading(t, 5.0) for t in range(30)])
    baseline = r.baseline(KEY)
    assert baseline is not None
    assert (baseline.centre, baseline.sigma) == (5.0, 0.01)


# --- the charts, with known answers --------------------------------------------------------------


def test_in_control_noise_false_alarm_rate_is_the_documented_one() -> None:
    """All four Western Electric rules on: about one signal per 70-90 in-control points by
    design, so over 1000 points there ARE alerts; a 10 s on-delay removes nearly all of them."""
    raised = []
    for seed in range(10):
        r = rule()
        raised.append(sum(e.kind is RAISED for e in feed(r, noise(seed, LEARNED + 1000))))
    assert 5 <= sum(raised) / len(raised) <= 30
    r = rule(on_delay_s=10)
    assert feed(r, noise(0, LEARNED + 1000)) == []


def test_a_constant_1_5_sigma_shift_is_seen_by_ewma_at_5_and_cusum_at_6() -> None:
    shift = [1.5] * 10
    r = known(rule(western_electric=[]))
    events = feed(r, zs(shift))
    # E_5 = 1.5 * (1 - 0.8^5) = 1.0085 > 3 * sqrt(0.2 / 1.8 * (1 - 0.8^10)) = 0.9448 (E_4 0.886 < 0.912)
    assert timeline(events) == [(4, RAISED)]  # the 5th point
    assert events[0].evidence.parameters["fired"] == "ewma"
    r = known(rule(western_electric=[], ewma=False))
    events = feed(r, zs(shift))
    assert timeline(events) == [(5, RAISED)]  # S+ = 6 > 5 at the 6th point
    params = events[0].evidence.parameters
    assert (params["fired"], params["cusum_pos"], params["cusum_h"]) == ("cusum", 6.0, 5.0)


def test_a_noisy_1_5_sigma_shift_is_detected_within_12_points() -> None:
    r = rule(western_electric=[])
    assert feed(r, noise(3, LEARNED)) == []
    events = feed(r, noise(4, 50, start=LEARNED, mean=11.5))
    first = events[0]
    assert first.kind is RAISED
    assert (first.at - at(LEARNED)).total_seconds() < 12
    assert {"ewma", "cusum"} & set(str(first.evidence.parameters["fired"]).split("+"))
    assert sum(e.kind is RAISED for e in events) == 1  # one alert for the sustained shift


def test_one_point_beyond_3_sigma_fires_we_rule_1_once() -> None:
    r = known(rule())
    events = feed(r, zs([*QUIET, 3.5, *QUIET]))
    assert timeline(events) == [(20, RAISED), (21, CLEARED)]
    assert events[0].evidence.parameters["fired"] == "we1"
    assert "Western Electric rule 1" in events[0].evidence.summary


def test_eight_on_one_side_fires_we_rule_4() -> None:
    r = known(rule())
    events = feed(r, zs([*QUIET, *[0.5] * 8, -0.1]))
    assert timeline(events) == [(27, RAISED), (28, CLEARED)]
    assert events[0].evidence.parameters["fired"] == "we4"


def test_we_rules_2_and_3() -> None:
    r = known(rule(ewma=False, cusum=False, western_electric=[2]))
    assert timeline(feed(r, zs([*QUIET, 2.5, 0.0, 2.5, 0.0, 0.0]))) == [(22, RAISED), (23, CLEARED)]
    r = known(rule(ewma=False, cusum=False, western_electric=[3]))
    assert timeline(feed(r, zs([*QUIET, 1.5, 1.5, 0.0, 1.5, 1.5]))) == [(24, RAISED)]


def test_evidence_names_charts_baseline_and_points() -> None:
    r = known(rule(), centre=10.0, sigma=1.0)
    (raised,) = feed(r, zs([*QUIET, 3.5]))
    params = raised.evidence.parameters
    assert params["baseline_centre"] == 10.0
    assert params["baseline_sigma"] == 1.0
    assert params["baseline_points"] == 30
    assert params["baseline_learned_to"] == "2025-12-31T23:59:59Z"
    assert params["z"] == 3.5
    assert params["western_electric"] == "1,2,3,4"
    assert len(raised.evidence.points) == 21
    assert raised.evidence.points[-1].value == 13.5
    assert raised.issue_type == "process-drift"


def test_on_and_off_delay_with_report_by_exception_ticks() -> None:
    r = known(rule(on_delay_s=5, off_delay_s=10))
    assert feed(r, zs([*QUIET, *[3.0] * 3])) == []  # CUSUM and EWMA hold from t=21 on
    assert r.tick(at(25)) == []
    (raised,) = r.tick(at(40))
    assert raised.kind is RAISED
    first = raised.evidence.parameters["first_signal_ts"]
    assert raised.at == at(5) + (datetime.fromisoformat(str(first)) - T0)
    assert r.tick(at(60)) == []  # raised once


# --- commands and state ------------------------------------------------------------------------


def test_freeze_relearn_and_reset() -> None:
    r = rule(learn_s=29, adaptive=True)
    feed(r, steady(0, 30))
    learned = r.baseline(KEY)
    assert learned is not None
    assert not learned.frozen
    assert feed(r, steady(30, 30)) == []  # adaptive: relearned from the next in-control window
    relearned = r.baseline(KEY)
    assert relearned is not None
    assert (relearned.learned_from, relearned.centre, relearned.sigma) == (at(30), 10.0, 0.7413)
    r.freeze(KEY)
    frozen = r.baseline(KEY)
    assert frozen is not None
    assert frozen.frozen
    feed(r, steady(60, 30))
    assert r.baseline(KEY) == frozen
    r.relearn(KEY)
    assert r.baseline(KEY) is None
    feed(r, steady(90, 30, mean=50.0))
    moved = r.baseline(KEY)
    assert moved is not None
    assert moved.centre == pytest.approx(50.0, abs=0.5)
    r.reset(KEY)
    assert r.baseline(KEY) is None
    state = r.series_state(KEY)
    assert state is not None
    assert (len(state.recent), state.last_ts) == (0, at(119))
    assert feed(r, [reading(100, 1.0)]) == []  # still late after a reset
    assert r.ignored_out_of_order == 1


def test_relearn_clears_an_open_alert_through_the_normal_path() -> None:
    r = known(rule())
    assert timeline(feed(r, zs([*QUIET, *[3.0] * 3]))) == [(21, RAISED)]  # rule 2
    r.relearn(KEY)
    assert timeline(feed(r, zs([0.0], start=30))) == [(30, CLEARED)]


def test_export_import_round_trips_and_decides_identically() -> None:
    original = rule(on_delay_s=3, off_delay_s=5)
    first, rest = noise(5, LEARNED + 40), noise(6, 200, start=LEARNED + 40, mean=11.5)
    feed(original, first)
    feed(original, rest[:5])  # mid-episode
    state = json.loads(json.dumps(original.export_state()))
    copy = rule(on_delay_s=3, off_delay_s=5)
    copy.import_state(state)
    assert copy.export_state() == state
    assert feed(copy, rest[5:]) == feed(original, rest[5:])
    assert copy.tick(at(5000)) == original.tick(at(5000))
    assert copy.export_state() == original.export_state()


def test_import_refuses_another_rules_state() -> None:
    state = rule().export_state()
    with pytest.raises(ValueError, match="rule"):
        rule(name="other").import_state(state)


# --- gate, quality, late data --------------------------------------------------------------------


def test_the_gate_excludes_readings_from_learning_and_charts() -> None:
    states = MachineStates()
    ctx = Context(machine_class="cnc_mill", states=states)
    r = rule(gate={"signal": "running", "equals": True}, learn_s=29)
    states.update(reading(-1, False, signal="running"))
    assert feed(r, noise(1, 100), ctx) == []
    assert r.baseline(KEY) is None
    states.update(reading(100, True, signal="running"))
    feed(r, noise(1, 30, start=100), ctx)
    assert r.baseline(KEY) is not None
    states.update(reading(130, False, signal="running"))
    assert feed(r, noise(2, 50, start=130, mean=20.0), ctx) == []  # stopped: not charted
    states.update(reading(180, True, signal="running"))
    events = feed(r, noise(2, 3, start=180, mean=20.0), ctx)
    assert timeline(events) == [(180, RAISED)]
    assert events[0].machine_class == "cnc_mill"
    states.update(reading(183, False, signal="running"))
    assert timeline(feed(r, noise(2, 1, start=183), ctx)) == [(183, CLEARED)]


def test_bad_quality_late_and_duplicated_readings_change_nothing() -> None:
    series = zs([*QUIET, 3.5, *QUIET])
    plain = known(rule())
    expected = feed(plain, series)
    r = known(rule())
    noisy = []
    for one in series:
        noisy += [one, one, reading(one.source_ts.timestamp() - T0.timestamp() - 0.5, 99.0)]
        noisy.append(reading(0.1 + (one.source_ts - T0).total_seconds(), 99.0, quality=Quality.BAD))
    events = feed(r, noisy)
    assert [(e.alert_id, e.kind, e.at, e.evidence.points) for e in events] == [
        (e.alert_id, e.kind, e.at, e.evidence.points) for e in expected
    ]
    assert events[0].evidence.parameters["bad_quality_ignored"] == 20
    assert r.ignored_bad_quality == len(series)
    assert r.ignored_out_of_order == 2 * len(series)


def test_config_refuses_impossible_combinations() -> None:
    with pytest.raises(ValidationError, match="at least one chart"):
        rule(ewma=False, cusum=False, western_electric=[])
    with pytest.raises(ValidationError, match="twice"):
        rule(western_electric=[1, 1])
    with pytest.raises(ValidationError, match="max_learn_points"):
        rule(min_points=50, max_learn_points=40)
    with pytest.raises(ValidationError):
        rule(western_electric=[5])


# --- properties --------------------------------------------------------------------------------

_steps = st.lists(
    st.tuples(
        st.integers(min_value=-3, max_value=60),
        st.floats(min_value=-5, max_value=25, allow_nan=False),
        st.booleans(),
    ),
    max_size=80,
)


def _inputs(steps: list[tuple[int, float, bool]]) -> list[Reading]:
    return [
        reading(t, v, quality=Quality.BAD if bad and v > 20 else Quality.GOOD)
        for t, v, bad in steps
    ]


def _fresh() -> SpcRule:
    return rule(learn_s=5, min_points=3, on_delay_s=2, off_delay_s=1)


@settings(max_examples=60, deadline=None)
@given(_steps)
def test_replay_is_deterministic_and_duplicates_change_nothing(
    steps: list[tuple[int, float, bool]],
) -> None:
    assert_replay_and_duplicates_change_nothing(_fresh, _inputs(steps), end=100)


Z_ON_AND_OFF_LIMITS = [z / 2 for z in range(-7, 8)]
"""-3.5 .. 3.5 by halves: the limits themselves (2.0, -1.0, 0.0, ...) are where > and >= part."""


@settings(max_examples=300)
@given(
    history=st.lists(
        st.sampled_from(Z_ON_AND_OFF_LIMITS), min_size=WE_HISTORY, max_size=WE_HISTORY
    ),
    rules=st.lists(st.integers(1, 4), unique=True).map(tuple),
)
def test_western_electric_written_out_agrees_with_the_plain_form(
    history: list[float], rules: tuple[int, ...]
) -> None:
    assert western_electric(deque(history, maxlen=WE_HISTORY), rules) == western_electric_any(
        history, rules
    )
