"""PartitionBatches against a producer whose acknowledgements the test controls."""

from __future__ import annotations

import asyncio

from plantmesh.kafka.batches import PartitionBatches
from tests.support.kafka import FakeBatch
from tests.support.waiting import async_wait_for


class _Producer:
    def __init__(self, capacity: int = 100) -> None:
        self.capacity = capacity
        self.sent: list[tuple[str, int, FakeBatch, asyncio.Future[None]]] = []
        self.refuse: Exception | None = None
        self.room = asyncio.Event()  # send_batch returns only when the test makes room
        self.room.set()

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.capacity)

    async def send_batch(
        self, batch: FakeBatch, topic: str, *, partition: int
    ) -> asyncio.Future[None]:
        await self.room.wait()
        if self.refuse is not None:
            raise self.refuse
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent.append((topic, partition, batch, future))
        return future

    def batches(self) -> list[list[bytes]]:
        return [builder.values for _, _, builder, _ in self.sent]


Done = list[tuple[list[str], BaseException | None]]


def _batches(producer: _Producer) -> tuple[PartitionBatches[str], Done]:
    done: Done = []
    batches: PartitionBatches[str] = PartitionBatches(
        producer,  # type: ignore[arg-type]
        lambda entries, error: done.append((list(entries), error)),
    )
    return batches, done


def _add(batches: PartitionBatches[str], partition: int, name: str, alone: bool = False) -> None:
    batches.add("raw", partition, b"k", name.encode(), [], name, alone=alone)


async def test_messages_fill_the_next_batch_while_one_is_on_its_way() -> None:
    producer = _Producer()
    batches, done = _batches(producer)
    _add(batches, 0, "a")
    await async_wait_for(lambda: _true(len(producer.sent) == 1), 5, "the first batch sent")
    producer.room.clear()  # the producer is busy: what comes now waits in one open batch
    for name in ("b", "c", "d"):
        _add(batches, 0, name)
    _add(batches, 1, "x")  # another partition has its own batch
    assert batches.busy
    producer.room.set()
    await async_wait_for(lambda: _true(len(producer.sent) == 3), 5, "all batches sent")
    assert sorted(producer.batches()) == [[b"a"], [b"b", b"c", b"d"], [b"x"]]
    for _, _, _, future in producer.sent:
        future.set_result(None)
    await batches.drain()
    assert sorted(entries for entries, _ in done) == [["a"], ["b", "c", "d"], ["x"]]
    assert all(error is None for _, error in done)
    assert not batches.busy


async def test_a_full_batch_starts_the_next_one_and_alone_stays_alone() -> None:
    producer = _Producer(capacity=2)
    batches, done = _batches(producer)
    for name in ("a", "b", "c", "d"):
        _add(batches, 0, name)
    _add(batches, 0, "big", alone=True)
    _add(batches, 0, "e")
    await async_wait_for(lambda: _true(len(producer.sent) == 4), 5, "four batches")
    assert producer.batches() == [[b"a", b"b"], [b"c", b"d"], [b"big"], [b"e"]]
    producer.sent[1][3].set_exception(RuntimeError("broker says no"))
    for _, _, _, future in producer.sent:
        if not future.done():
            future.set_result(None)
    await batches.drain()
    refused = [(entries, error) for entries, error in done if error is not None]
    assert [(entries, str(error)) for entries, error in refused] == [(["c", "d"], "broker says no")]


async def test_a_refused_submission_and_close_report_every_entry() -> None:
    producer = _Producer()
    batches, done = _batches(producer)
    producer.refuse = ValueError("no metadata")
    _add(batches, 0, "a")
    await batches.drain()
    assert [(entries, type(error)) for entries, error in done] == [(["a"], ValueError)]
    done.clear()
    producer.refuse = None
    _add(batches, 0, "b")  # sent, never acknowledged
    await async_wait_for(lambda: _true(len(producer.sent) == 1), 5, "b sent")
    producer.room.clear()
    _add(batches, 0, "c")  # waiting for room in the producer
    _add(batches, 0, "d")
    await batches.close()
    assert sorted(name for entries, _ in done for name in entries) == ["b", "c", "d"]
    assert all(isinstance(error, asyncio.CancelledError) for _, error in done)
    assert not batches.busy


async def _true(value: bool) -> bool:
    return value
