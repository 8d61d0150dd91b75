"""The completeness ledger across a rebalance, with a stand-in consumer: aiokafka lets `getmany`
return a newly assigned partition's records while `on_partitions_assigned` still loads the
snapshots (it runs in the coordinator's task). Those records must count once the snapshot is in,
not be applied to an empty ledger that the snapshot then replaces (CI saw a gap of 164 batches
that never closed after a writer was killed mid-load)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka.structs import TopicPartition

from ingest.config import IngestConfig
from ingest.ledger.service import LedgerService
from ingest.ledger.state import GatewayLedger, SeqRecord
from tests.support.waiting import async_wait_for, now

TOPIC = "telemetry.sequences"


@dataclass
class Record:
    offset: int
    value: bytes
    key: bytes = b"p0/gw-p0"


class FakeConsumer:
    """Hands out what the test queues, one poll at a time; remembers commits."""

    def __init__(self) -> None:
        self.polls: asyncio.Queue[dict[TopicPartition, list[Record]]] = asyncio.Queue()
        self.committed: list[dict[TopicPartition, int]] = []

    async def getmany(self, timeout_ms: int) -> dict[TopicPartition, list[Record]]:
        try:
            return await asyncio.wait_for(self.polls.get(), timeout_ms / 1000)
        except TimeoutError:
            return {}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.append(dict(offsets))


class FakeSink:
    def __init__(self) -> None:
        self.lines: list[str] = []

    async def write(self, lines: list[str]) -> None:
        self.lines += lines


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes, partition: int | None) -> Any:
        self.sent.append((topic, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _service(
    config: IngestConfig, sink: FakeSink, consumer: FakeConsumer, stop: asyncio.Event
) -> LedgerService:
    service = LedgerService(config, FakeProducer(), sink, stop)  # type: ignore[arg-type]
    service._consumer = consumer
    return service


async def _until(holds: Callable[[], bool], what: str) -> None:
    await async_wait_for(lambda: now(holds()), 5, what)


def _records(first: int, last: int) -> list[Record]:
    """Batches `first`..`last` of gw-p0's session s1, at offsets equal to their numbers."""
    return [
        Record(seq, SeqRecord("p0", "gw-p0", "s1", seq, 5).to_bytes())
        for seq in range(first, last + 1)
    ]


def _snapshot(last_seq: int) -> GatewayLedger:
    """What the killed writer had published: batches 0..last_seq, applied up to that offset."""
    ledger = GatewayLedger("p0", "gw-p0", partition=0)
    for record in _records(0, last_seq):
        ledger.add(SeqRecord.from_bytes(record.value), 0.0)
        ledger.applied = record.offset
    return ledger


async def test_records_fetched_while_the_snapshot_loads_count_once_it_is_in() -> None:
    stop = asyncio.Event()
    config = IngestConfig.model_validate({"writer": {"completeness": {"flush_interval_s": 0.05}}})
    consumer = FakeConsumer()
    service = _service(config, FakeSink(), consumer, stop)
    loading = asyncio.Event()
    release = asyncio.Event()

    async def slow_snapshots(partitions: Any, owned: set[int]) -> dict[bytes, GatewayLedger]:
        loading.set()
        await release.wait()
        return {b"p0/gw-p0": _snapshot(49)}

    service._read_snapshots = slow_snapshots  # type: ignore[method-assign]
    tp = TopicPartition(TOPIC, 0)
    run = asyncio.create_task(service.run())
    try:
        await service.hand_over([])  # aiokafka revokes (nothing, the first time) before joining
        take_over = asyncio.create_task(service.take_over([tp]))
        await _until(loading.is_set, "the take-over to start loading")
        # The assignment is known: the fetch from the committed offset (40) comes back before
        # the snapshot (applied up to 49) is in.
        consumer.polls.put_nowait({tp: _records(40, 59)})
        await _until(consumer.polls.empty, "the poll to be taken")
        release.set()
        await take_over
        consumer.polls.put_nowait({tp: _records(60, 69)})

        def figures() -> tuple[int, int]:
            ledger = service.gateways.get(b"p0/gw-p0")
            found = ledger.figures() if ledger is not None else None
            return (found.received, found.missing) if found is not None else (0, 0)

        await _until(lambda: figures() == (70, 0), "70 batches, none missing")
        assert service.gateways[b"p0/gw-p0"].figures().duplicates == 0  # 40..49 skipped
        await _until(lambda: {tp: 70} in consumer.committed, "the offset after the last commit")
    finally:
        stop.set()
        await asyncio.wait_for(run, 5)


async def test_a_take_over_that_fails_stops_the_ledger_instead_of_counting_from_nothing() -> None:
    stop = asyncio.Event()
    consumer = FakeConsumer()
    service = _service(IngestConfig(), FakeSink(), consumer, stop)

    async def broken(partitions: Any, owned: set[int]) -> dict[bytes, GatewayLedger]:
        raise ValueError("a snapshot nobody can read")

    service._read_snapshots = broken  # type: ignore[method-assign]
    tp = TopicPartition(TOPIC, 0)
    run = asyncio.create_task(service.run())
    try:
        await service.hand_over([])
        await service.take_over([tp])  # aiokafka would log and swallow what it raised
        consumer.polls.put_nowait({tp: _records(0, 9)})
        await asyncio.wait({run}, timeout=5)
        assert run.done(), "the ledger ran on without its snapshots"
        assert "nobody can read" in str(run.exception())
        assert service.gateways == {}  # nothing counted from an empty start
    finally:
        stop.set()
        if not run.done():
            run.cancel()
        await asyncio.gather(run, return_exceptions=True)
