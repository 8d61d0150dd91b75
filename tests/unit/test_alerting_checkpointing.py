"""When checkpoints are written: one overdue shard per turn, in the background, one write at a
time; a flush waits for the write in flight first (a compacted topic keeps the last record of a
key). A fake store stands in for Kafka here; test_alerting_durable_state runs the real one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from aiokafka.errors import KafkaConnectionError

from alerting.catalogue import load_catalogue
from alerting.checkpoint import load, packed
from alerting.checkpointing import Checkpointer
from alerting.config import AlertingConfig
from alerting.engine import Engine
from alerting.shards import Shard
from alerting.state_store import Snapshot
from alerting.stats import ServiceStats


def engine() -> Engine:
    config = AlertingConfig.model_validate({"rules": []})
    return Engine.from_config(config.rules, load_catalogue(config.catalogue))


class FakeStore:
    """Records what was written, in order; a write waits until `release` is set."""

    def __init__(self) -> None:
        self.written: list[int] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail = False

    async def write(self, snapshots: list[Snapshot]) -> None:
        await self.release.wait()
        if self.fail:
            raise KafkaConnectionError("broker gone")
        for partition, data in snapshots:
            assert load(packed(data)).partition == partition  # a real, loadable checkpoint
            self.written.append(partition)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def shard(partition: int, *, age_s: float, dirty: bool = True, clock: Clock) -> Shard:
    made = Shard(partition, engine(), offsets={"t": 5})
    made.dirty = dirty
    made.checkpointed = clock.now - age_s
    return made


def checkpointer(store: FakeStore, clock: Clock) -> Checkpointer:
    return Checkpointer(store, 5.0, ServiceStats(), clock)  # type: ignore[arg-type]


async def test_a_turn_writes_the_most_overdue_changed_shard_in_the_background() -> None:
    store, clock = FakeStore(), Clock()
    writer = checkpointer(store, clock)
    shards = [
        shard(0, age_s=6, clock=clock),
        shard(1, age_s=9, clock=clock),
        shard(2, age_s=20, dirty=False, clock=clock),
    ]
    shards[1].republished.add(("a", "raised", datetime.now(UTC)))
    writer.turn(shards)
    assert not shards[1].dirty
    assert shards[1].republished  # still expected: the replay may not have reached it
    assert shards[0].dirty
    await writer.settle()
    assert store.written == [1]
    assert writer.stats.checkpoints == 1


async def test_turns_wait_for_the_write_in_flight_and_are_spread_over_the_interval() -> None:
    store, clock = FakeStore(), Clock()
    store.release.clear()
    writer = checkpointer(store, clock)
    shards = [shard(p, age_s=6 + p, clock=clock) for p in range(4)] + [
        shard(4, age_s=1, clock=clock)
    ]
    writer.turn(shards)
    clock.now += 2.0
    writer.turn(shards)  # the first write has not landed: no second one
    store.release.set()
    await writer.settle()
    assert store.written == [3]
    writer.turn(shards)  # 2 s after the last turn: 5 shards share 5 s, so one turn a second
    clock.now += 0.5
    await writer.settle()
    writer.turn(shards)  # 0.5 s after it: too soon
    await writer.settle()
    assert store.written == [3, 2]
    clock.now += 0.5
    writer.turn(shards)
    await writer.settle()
    assert store.written == [3, 2, 1]
    assert shards[4].dirty  # changed too recently for its turn


async def test_a_failed_background_write_leaves_the_shard_to_its_next_turn() -> None:
    store, clock = FakeStore(), Clock()
    store.fail = True
    writer = checkpointer(store, clock)
    shards = [shard(0, age_s=6, clock=clock)]
    writer.turn(shards)
    await writer.settle()  # the failure is reported, not raised
    assert shards[0].dirty
    assert writer.stats.checkpoints == 0
    store.fail = False
    clock.now += 5.0
    writer.turn(shards)
    await writer.settle()
    assert store.written == [0]
    assert not shards[0].dirty


async def test_a_flush_lands_after_the_write_in_flight() -> None:
    store, clock = FakeStore(), Clock()
    store.release.clear()
    writer = checkpointer(store, clock)
    shards = [shard(0, age_s=6, clock=clock), shard(1, age_s=7, clock=clock)]
    writer.turn(shards)  # shard 1, held back by the store
    shards[1].dirty = True  # changed again since its snapshot
    before_release: list[list[int]] = []

    def release() -> None:  # runs once the flush below is waiting
        before_release.append(list(store.written))
        store.release.set()

    asyncio.get_running_loop().call_soon(release)
    await writer.flush(shards)
    assert before_release == [[]]
    assert store.written == [1, 0, 1]  # the older record of shard 1 first, then the newer
    assert not any(s.dirty for s in shards)


async def test_a_flush_raises_what_the_store_raises() -> None:
    store, clock = FakeStore(), Clock()
    store.fail = True
    with pytest.raises(KafkaConnectionError):
        await checkpointer(store, clock).flush([shard(0, age_s=0, clock=clock)])
