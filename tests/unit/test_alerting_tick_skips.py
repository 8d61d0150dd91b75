"""Rules skip the ticks that cannot decide anything (nothing pending, no window ending, no key
due, no bad run): a run of the demo's rules on every kind of simulated fault, ticked after every
batch as the service does, makes exactly the events of the same run where every tick is made to
look at every series."""

from __future__ import annotations

from alerting.engine import Engine
from alerting.rules import Rule
from plantmesh.contracts import AlertEvent
from tests.support.sim_stream import simulated_batches
from tests.unit.test_alerting_checkpoint import engine, run

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


def run_looking_every_time(target: Engine) -> list[AlertEvent]:
    events: list[AlertEvent] = []
    for item in simulated_batches(seconds=SECONDS):
        events.extend(target.process_batch(item.batch, item.machine_class))
        assert forget_bounds(target.rules) >= 3  # threshold, oscillation, stale, bad_quality
        events.extend(target.advance())
    return events


def test_skipped_ticks_change_no_decision() -> None:
    skipping = run(engine(), simulated_batches(seconds=SECONDS))
    assert {e.rule for e in skipping} >= {
        "bearing-hot",  # threshold
        "vibration-growing",  # oscillation
        "machine-silent",  # stale
        "sensor-bad",  # bad_quality
    }
    assert skipping == run_looking_every_time(engine())
