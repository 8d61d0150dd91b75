"""The alerting consumers' polls across a rebalance, with a stand-in consumer: aiokafka lets
`getmany` return records of a new assignment before `on_partitions_assigned` has restored the
shards and sought to their checkpoints. Such a poll waits for the take-over; a restored
partition then reads again from its shard's offset (its records may predate the seek), a fresh
one keeps its records (read from the group's committed offset, as it would), and a partition
that went to another process is dropped: nothing is evaluated twice and nothing is skipped.
The incident correlator, which seeks every partition it takes, reads such a poll again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeAlias

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from alerting.config import AlertingConfig
from alerting.incidents.correlate import Correlate
from alerting.incidents.correlator import Correlator
from alerting.incidents.partitions import Partition
from alerting.incidents.plumbing import Retrier
from alerting.incidents.policy import Correlation, CorrelationConfig
from alerting.incidents.stage_config import IncidentsConfig
from alerting.incidents.stats import StageStats
from alerting.service import AlertingService
from plantmesh.fleet import Fleet
from tests.support.threshold import BEARING_RULE

Record: TypeAlias = ConsumerRecord[bytes, bytes]


class FakeConsumer:
    """Runs `during` inside getmany (a rebalance in the coordinator task), remembers seeks."""

    def __init__(self, records: dict[TopicPartition, list[Record]]) -> None:
        self.records = records
        self.during: Callable[[], Any] = lambda: None
        self.seeks: dict[TopicPartition, int] = {}
        self.commits = 0
        self.polled = asyncio.Event()

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        self.during()
        self.polled.set()
        return self.records

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset

    async def commit(self, offsets: object = None) -> None:
        self.commits += 1


@pytest.fixture
async def alerting(tmp_path: Path) -> AsyncIterator[AlertingService]:
    config = AlertingConfig.model_validate(
        {
            "kafka": {"bootstrap": "127.0.0.1:9"},  # never reached
            "alert_log": str(tmp_path / "alerts.jsonl"),
            "rules": [BEARING_RULE],
        }
    )
    made = AlertingService(config)
    yield made
    await made.store.close()  # its producer exists from the start, never started here


def records(topic: str, partition: int, offsets: range) -> list[Record]:
    value = b"not a batch"  # evaluated: counted as a message, skipped as undecodable
    return [
        ConsumerRecord(topic, partition, o, 0, 0, b"p/m", value, None, 0, 11, []) for o in offsets
    ]


async def test_a_poll_fetched_before_the_take_over_is_read_again_from_the_checkpoint(
    alerting: AlertingService,
) -> None:
    topic = "telemetry.normalized"
    tp = TopicPartition(topic, 0)
    consumer = FakeConsumer({tp: records(topic, 0, range(100, 110))})
    alerting.gate.open()
    alerting.shards.add(0, None).offsets[topic] = 100

    def rebalance() -> None:  # revoked and assigned again while the fetch was under way
        alerting.gate.close()
        alerting.gate.open()

    consumer.during = rebalance
    await alerting._poll_once(consumer)
    assert alerting.stats.messages == 0  # dropped, not evaluated
    assert consumer.seeks == {tp: 100}  # the shard's own offset, not past the dropped ones


async def test_a_poll_during_the_take_over_waits_for_it_and_keeps_a_fresh_partitions_records(
    alerting: AlertingService,
) -> None:
    topic = "telemetry.normalized"
    owned, gone = TopicPartition(topic, 1), TopicPartition(topic, 2)
    fetched = {owned: records(topic, 1, range(5, 8)), gone: records(topic, 2, range(0, 3))}
    consumer = FakeConsumer(fetched)
    alerting.gate.close()  # revoked: the take-over of partition 1 is under way

    polling = asyncio.create_task(alerting._poll_once(consumer))
    await asyncio.wait_for(consumer.polled.wait(), 5)  # fetched while the gate is closed
    alerting.shards.add(1, None)  # the take-over: partition 2 went to another process
    alerting.gate.open()
    await asyncio.wait_for(polling, 5)
    assert alerting.stats.messages == 3  # partition 1's, evaluated once its shard was there
    assert alerting.stats.skipped == {"malformed_json": 3}
    assert consumer.seeks == {}  # partition 2 is another process's now: dropped, left alone


async def test_the_incident_correlator_reads_a_poll_across_a_rebalance_again_from_its_offset() -> (
    None
):
    """After a crash the group's committed offset (40) is ahead of the checkpoint (30): records
    fetched from 40 before the take-over sought to 30 would move the correlator past 30..39."""
    config = IncidentsConfig.model_validate({"namespace": "t", "kafka": {"bootstrap": "x:9"}})
    stop = asyncio.Event()
    retry = Retrier(stop, config.backoff, logging.getLogger("test"))
    policy = CorrelationConfig(version="t", default=Correlation(min_plants=2, window_s=600))
    loop = Correlate(config, policy, Fleet([]), StageStats(), stop, retry)
    try:
        tp = TopicPartition(loop.topic, 0)
        consumer = FakeConsumer({tp: records(loop.topic, 0, range(40, 45))})

        def rebalance() -> None:  # the take-over restores a checkpoint at 30 while fetching
            loop.gate.close()
            loop.partitions[0] = Partition(0, loop.topic, Correlator(policy), offset=30)
            loop.gate.open()

        consumer.during = rebalance
        await loop._poll_once(consumer)
        assert loop.partitions[0].offset == 30  # nothing taken in
        assert consumer.seeks == {tp: 30}
        assert consumer.commits == 0
    finally:
        await loop.store.close()  # its producer exists from the start
