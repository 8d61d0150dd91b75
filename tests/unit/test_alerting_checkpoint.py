"""Checkpoints of the engine: a run cut anywhere, checkpointed to bytes and continued in a new
engine, makes exactly the events of the run never cut; duplicated batches change nothing; a
changed rule starts afresh; a checkpoint cannot name code outside our packages."""

from __future__ import annotations

import os
import pickle
import zlib

import pytest

from alerting.checkpoint import MAGIC, Checkpoint, CheckpointError, dump, load
from alerting.engine import Engine
from plantmesh.contracts import AlertEvent, ReadingBatch, decode, encode
from tests.support.demo_rules import demo_config, engine
from tests.support.sim_stream import Classified, simulated_batches

SECONDS = 600


def run(target: Engine, batches: tuple[Classified, ...] | list[Classified]) -> list[AlertEvent]:
    """As the service does: each batch, then event time moved on."""
    events: list[AlertEvent] = []
    for item in batches:
        events.extend(target.process_batch(item.batch, item.machine_class))
        events.extend(target.advance())
    return events


def continued(before: Engine) -> Engine:
    """A new engine of the same configuration, continuing from `before` through bytes."""
    restored = load(dump(Checkpoint(0, before, {"telemetry.normalized": 1})))
    after = engine()
    assert after.adopt(restored.engine) == []
    return after


@pytest.fixture(scope="module")
def uncut() -> list[AlertEvent]:
    events = run(engine(), simulated_batches(seconds=SECONDS))
    kinds = {e.rule for e in events}
    assert len(kinds) >= 4, f"the input should exercise several rule types, got {kinds}"
    return events


@pytest.mark.parametrize("cut", [1, 1500, 4000, 7777, 11000])
def test_a_run_cut_and_continued_from_a_checkpoint_makes_the_same_events(
    uncut: list[AlertEvent], cut: int
) -> None:
    batches = simulated_batches(seconds=SECONDS)
    first = engine()
    before = run(first, batches[:cut])
    after = run(continued(first), batches[cut:])
    assert before + after == uncut


def test_every_batch_delivered_twice_changes_nothing(uncut: list[AlertEvent]) -> None:
    batches = simulated_batches(seconds=SECONDS)
    target = engine()
    assert run(target, [item for item in batches for item in (item, item)]) == uncut
    assert target.seen.duplicates == len(batches)


def test_a_duplicate_after_a_restore_is_still_recognised() -> None:
    # Decoded from JSON as the service does: times then carry pydantic's own tzinfo.
    batches = [
        Classified(decode(ReadingBatch, encode(item.batch)), item.machine_class)
        for item in simulated_batches(seconds=60)
    ]
    first = engine()
    run(first, batches[:100])
    after = continued(first)
    assert run(after, batches[50:100]) == []
    assert after.seen.duplicates == 50


def test_a_changed_rule_starts_afresh_and_the_others_keep_their_state() -> None:
    batches = simulated_batches(seconds=60)
    first = engine()
    run(first, batches)
    changed = engine(demo_config(**{first.rules[0].name: {"severity": "low"}}))
    assert changed.adopt(load(dump(Checkpoint(0, first))).engine) == [first.rules[0].name]
    assert changed.rules[0] is not first.rules[0]
    assert changed.newest == first.newest
    assert changed.seen.first_time("gw-plant-a", "offline", 0) is False


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"garbage", "not an alerting checkpoint"),
        (MAGIC + b"not zlib", "unreadable checkpoint"),
        (MAGIC + zlib.compress(pickle.dumps(_Evil())), "may not name posix.system"),
        (MAGIC + zlib.compress(pickle.dumps({"a": 1})), "holds a dict"),
        (MAGIC + zlib.compress(pickle.dumps(getattr)), "holds a function"),
    ],
)
def test_a_checkpoint_that_is_not_ours_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        load(data)


def test_a_getattr_in_a_checkpoint_reaches_no_dunder() -> None:
    class Reach:
        def __reduce__(self) -> tuple[object, tuple[object, str]]:
            return (getattr, (Checkpoint, "__init__"))

    with pytest.raises(CheckpointError, match="may not name"):
        load(MAGIC + zlib.compress(pickle.dumps(Reach())))
