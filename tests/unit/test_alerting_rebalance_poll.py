"""The alerting service's poll across a rebalance, with a stand-in consumer: aiokafka lets
`getmany` return records of a new assignment before `on_partitions_assigned` has restored the
shards and sought to their checkpoints. Such a poll is dropped, never evaluated, and every
partition it touched that is still owned reads on from its shard's offset (else the group's
committed offset), so nothing is evaluated twice and nothing is skipped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeAlias

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from alerting.config import AlertingConfig
from alerting.service import AlertingService
from tests.support.threshold import BEARING_RULE

Record: TypeAlias = ConsumerRecord[bytes, bytes]


class FakeConsumer:
    """Runs `during` inside getmany (a rebalance in the coordinator task), remembers seeks."""

    def __init__(self, records: dict[TopicPartition, list[Record]], committed: int | None) -> None:
        self.records = records
        self.during: Callable[[], Any] = lambda: None
        self.seeks: dict[TopicPartition, int] = {}
        self._committed = committed
        self.commits = 0
        self.polled = asyncio.Event()

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        self.during()
        self.polled.set()
        return self.records

    async def committed(self, tp: TopicPartition) -> int | None:
        return self._committed

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset

    async def commit(self) -> None:
        self.commits += 1


MADE: list[AlertingService] = []


@pytest.fixture(autouse=True)
async def _close_services() -> AsyncIterator[None]:
    yield
    while MADE:  # the state store's producer exists from the start, never started here
        await MADE.pop().store.close()


def service(tmp_path: Path, consumer: FakeConsumer) -> AlertingService:
    config = AlertingConfig.model_validate(
        {
            "kafka": {"bootstrap": "127.0.0.1:9"},  # never reached
            "alert_log": str(tmp_path / "alerts.jsonl"),
            "rules": [BEARING_RULE],
        }
    )
    made = AlertingService(config)
    MADE.append(made)
    made._consumer = consumer
    return made


def records(topic: str, partition: int, offsets: range) -> list[Record]:
    return [
        ConsumerRecord(topic, partition, o, 0, 0, b"p/m", b"not evaluated", None, 0, 13, [])
        for o in offsets
    ]


async def test_a_poll_fetched_before_the_take_over_is_read_again_from_the_checkpoint(
    tmp_path: Path,
) -> None:
    topic = "telemetry.normalized"
    tp = TopicPartition(topic, 0)
    consumer = FakeConsumer({tp: records(topic, 0, range(100, 110))}, committed=None)
    alerting = service(tmp_path, consumer)
    alerting.gate.open()
    alerting.shards.add(0, None).offsets[topic] = 100

    def rebalance() -> None:  # revoked and assigned again while the fetch was under way
        alerting.gate.close()
        alerting.gate.open()

    consumer.during = rebalance
    await alerting._poll_once(consumer)
    assert alerting.stats.messages == 0  # dropped, not evaluated
    assert consumer.seeks == {tp: 100}  # the shard's own offset, not past the dropped ones
    assert consumer.commits == 0  # the fetch position it moved is never committed


async def test_a_poll_during_the_take_over_waits_for_it_then_reads_on_from_the_group(
    tmp_path: Path,
) -> None:
    topic = "telemetry.normalized"
    owned, gone = TopicPartition(topic, 1), TopicPartition(topic, 2)
    fetched = {owned: records(topic, 1, range(5, 8)), gone: records(topic, 2, range(0, 3))}
    consumer = FakeConsumer(fetched, committed=5)
    alerting = service(tmp_path, consumer)
    alerting.gate.close()  # revoked: the take-over of partition 1 is under way

    polling = asyncio.create_task(alerting._poll_once(consumer))
    await asyncio.wait_for(consumer.polled.wait(), 5)  # fetched while the gate is closed
    alerting.shards.add(1, None)  # the take-over: partition 2 went to another process
    alerting.gate.open()
    await asyncio.wait_for(polling, 5)
    assert alerting.stats.messages == 0
    # Positioned only once the take-over had added the shard; no offset of its own yet, so the
    # group's committed one. Partition 2 is another process's now: left alone.
    assert consumer.seeks == {owned: 5}
