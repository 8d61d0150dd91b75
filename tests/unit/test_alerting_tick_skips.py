"""Rules skip the ticks that cannot decide anything (nothing pending, no window ending, no key
due, no bad run): a run of the demo's rules on every kind of simulated fault, ticked after every
batch as the service does, makes exactly the events of the same run where every tick is made to
look at every series."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerting.catalogue import load_catalogue
from alerting.config import AlertingConfig
from alerting.engine import Engine
from alerting.rules import Rule
from alerting.rules.base import Context
from plantmesh.contracts import STATUS_BAD_SENSOR_FAILURE, AlertEvent, Reading
from tests.support.alerting import MILL, at
from tests.support.demo_rules import engine
from tests.support.sim_stream import simulated_batches

SECONDS = 1200  # the fault tour's comms loss comes after 10 minutes

_BOUNDS = {"_next_due": None, "_next_close": None, "_any_run": True}
"""Each rule's "nothing to do before" and its value for "not known: look"."""


def forget_bounds(rules: list[Rule]) -> int:
    forgotten = 0
    for rule in rules:
        for name, unknown in _BOUNDS.items():
            if name in vars(rule) or hasattr(type(rule), name):
                setattr(rule, name, unknown)
                forgotten += 1
    return forgotten


Timed = list[tuple[int, AlertEvent]]
"""Each event with the number of the step that made it: skipping must not delay one either."""


def run_timed(target: Engine, look_every_time: bool) -> Timed:
    events: Timed = []
    for i, item in enumerate(simulated_batches(seconds=SECONDS)):
        events += [(i, e) for e in target.process_batch(item.batch, item.machine_class)]
        if look_every_time:
            assert forget_bounds(target.rules) >= 5  # one per rule type that skips
        events += [(i, e) for e in target.advance()]
    return events


def test_skipped_ticks_change_no_decision() -> None:
    skipping = run_timed(engine(), look_every_time=False)
    assert {e.rule for _, e in skipping} >= {
        "bearing-hot",  # threshold
        "vibration-growing",  # oscillation
        "machine-silent",  # stale
        "sensor-bad",  # bad_quality
    }
    assert skipping == run_timed(engine(), look_every_time=True)


# --- any input: readings of two machines in any order (late ones too), ticks whose watermark
# may even go back; a rule that skips ticks against the same rule made to look every time.
Step = tuple[str, int, float, int]
"""("read", machine, seconds on from the step before (back when negative: late), value) or
("tick", 0, seconds from the newest reading to the watermark, 0)."""

steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("read"),
            st.integers(0, 1),
            st.sampled_from([-30.0, -5.0, 0.0, 0.5, 2.0, 5.0, 10.0, 25.0, 70.0]),
            st.integers(0, 2),
        ),
        st.tuples(
            st.just("tick"), st.just(0), st.sampled_from([-40.0, -1.0, 0.0, 30.0]), st.just(0)
        ),
    ),
    max_size=80,
)

RULES: dict[str, dict[str, object]] = {
    "state_flapping": {"min_transitions": 3, "window_s": 60, "issue_type": "state-flapping"},
    "threshold": {"above": 1.5, "on_delay_s": 20, "issue_type": "bearing-overtemperature"},
    "stale": {"for_s": 30, "issue_type": "comms-loss"},
    "bad_quality": {"for_s": 10, "issue_type": "sensor-fault"},
    "oscillation": {"window_s": 10, "min_amplitude": 1.0, "issue_type": "vibration-instability"},
}


def rule_of(type_: str) -> Rule:
    config = AlertingConfig.model_validate(
        {"rules": [{"name": "r", "type": type_, "signal": "s", **RULES[type_]}]}
    )
    return Engine.from_config(config.rules, load_catalogue(config.catalogue)).rules[0]


def play(rule: Rule, script: list[Step], look_every_time: bool) -> Timed:
    events: Timed = []
    now = newest = 0.0
    for i, (kind, machine, seconds, value) in enumerate(script):
        if kind == "tick":
            if look_every_time:
                forget_bounds([rule])
            events += [(i, e) for e in rule.tick(at(newest + seconds))]
            continue
        now = max(0.0, now + seconds)
        newest = max(newest, now)
        asset = MILL.model_copy(update={"machine": f"m{machine}"})
        bad = {"status_code": STATUS_BAD_SENSOR_FAILURE} if value == 2 else {}
        reading = Reading.model_validate(
            {"asset": asset, "signal": "s", "value": value and 3.0 + now / 20, "source_ts": at(now),
             "gateway_ts": at(now)} | bad
        )  # fmt: skip
        events += [(i, e) for e in rule.evaluate(reading, Context(gateway_id="gw"))]
    return events


@pytest.mark.parametrize("type_", sorted(RULES))
@settings(max_examples=150, deadline=None)
@given(script=steps)
def test_any_input_skipped_ticks_change_no_decision(type_: str, script: list[Step]) -> None:
    assert play(rule_of(type_), script, False) == play(rule_of(type_), script, True)
