"""Recalling what was stored before this writer took a partition, so that a conflicting replay
is refused after a restart or a rebalance too.

The duplicate window (ingest.writer.duplicates) lives in memory. When Kafka assigns this writer a
telemetry.raw partition, the batches committed there before were stored by an earlier process
(this writer before a restart or crash, or another writer before a rebalance): this one has not
seen them. Before the partition's first fetch, the listener reads the tail of what was committed
(up to the window's share of the partition) with a group-less consumer and passes each message
through the same checks as the live path, remembering the digests of what would have been
stored. Nothing is written or sent: those batches were handled already.

aiokafka may fetch a newly assigned partition while the listener still runs, so the writer
checks nothing fetched after a revocation until the recall that follows it is done (`gate`).

Kafka keeps telemetry.raw for its retention time, and the raw message is the record of what was
stored (the same checks turn it into the same lines), so no state of our own has to be kept.
Offsets this process has read itself are not read again on a later rebalance.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from ingest.config import IngestConfig
from ingest.writer.poll import Preparer
from plantmesh.kafka.assignment_gate import AssignmentGate
from plantmesh.kafka.clients import make_consumer, start_client
from plantmesh.resilience import Backoff, ErrorLog, retry_until_stopped

log = logging.getLogger(__name__)

FETCH_TIMEOUT_MS = 500
PROGRESS_EVERY_S = 5.0


class Recall(ConsumerRebalanceListener):  # type: ignore[misc]
    """The writer's rebalance listener: on assignment, recall each partition's committed tail
    into the duplicate window before any of it is fetched."""

    def __init__(self, config: IngestConfig, preparer: Preparer, stop: asyncio.Event) -> None:
        self.config = config
        self.preparer = preparer
        self.consumer: Any = None
        """The writer's group consumer (set once it exists): whose committed offsets count."""
        self._stop = stop
        self.recalled = 0
        """Messages read back so far (all partitions, all assignments)."""
        self.gate = AssignmentGate(stop)
        """Open while no (re)assignment is pending: what a fetch returns may then be checked."""

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        """Called before every (re)join, the first too. The digests of revoked partitions
        stay: they age out of the window like any."""
        self.gate.close()

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        try:
            await self._recall(sorted(assigned))
        finally:  # aiokafka logs and swallows a listener's exception: the writer must go on
            self.gate.open()

    async def _recall(self, partitions: list[TopicPartition]) -> None:
        window = self.preparer.digests.size
        if not window or not partitions or self.consumer is None:
            return
        ranges: dict[TopicPartition, tuple[int, int]] = {}
        share = max(1, window // len(partitions))
        for tp in partitions:
            committed = await self.consumer.committed(tp)
            if committed is None:
                continue  # nothing committed: the live path reads it all from the start
            start = max(0, committed - share, self.preparer.read_until.get(tp, 0))
            if start < committed:
                ranges[tp] = (start, committed)
        if not ranges:
            return
        await retry_until_stopped(
            functools.partial(self._read, ranges),
            stop=self._stop,
            backoff=Backoff(self.config.backoff.initial_s, self.config.backoff.max_s),
            errors=ErrorLog(log, "duplicate window recall"),
            retry_on=(KafkaError,),
        )

    async def _read(self, ranges: dict[TopicPartition, tuple[int, int]]) -> None:
        """Read [start, end) of each partition into the window; from the start again on a
        retry (remembering a batch twice changes nothing)."""
        total = sum(end - start for start, end in ranges.values())
        log.info(
            "recalling up to %d stored batches of %d partitions into the duplicate window",
            total,
            len(ranges),
        )
        began = last_note = time.monotonic()
        reader = make_consumer(
            self.config.kafka, "recall", group_id=None, max_partition_fetch_bytes=8 << 20
        )
        await start_client(reader)
        done = 0
        try:
            reader.assign(list(ranges))
            for tp, (start, _) in ranges.items():
                reader.seek(tp, start)
            left = set(ranges)
            while left:
                fetched = await reader.getmany(*left, timeout_ms=FETCH_TIMEOUT_MS)
                for tp, batch in fetched.items():
                    end = ranges[tp][1]
                    for record in batch:
                        if record.offset >= end:
                            break
                        self.preparer.remember(record)
                        done += 1
                    if batch and batch[-1].offset + 1 >= end:
                        left.discard(tp)
                    await asyncio.sleep(0)
                if not fetched and await self._ended(reader, left, ranges):
                    break
                if time.monotonic() - last_note >= PROGRESS_EVERY_S:
                    last_note = time.monotonic()
                    log.info("duplicate window recall: %d of up to %d batches", done, total)
        finally:
            await reader.stop()
        for tp, (_, end) in ranges.items():
            self.preparer.read_until[tp] = max(self.preparer.read_until.get(tp, 0), end)
        self.recalled += done
        log.info(
            "duplicate window recall done: %d batches in %.1f s (window holds %d)",
            done,
            time.monotonic() - began,
            len(self.preparer.digests),
        )

    @staticmethod
    async def _ended(
        reader: Any, left: set[TopicPartition], ranges: dict[TopicPartition, tuple[int, int]]
    ) -> bool:
        """Whether nothing more can come: the partitions left are at their end (compaction or
        retention removed the rest of the range, or it ends in a transaction marker)."""
        for tp in list(left):
            if await reader.position(tp) >= ranges[tp][1]:
                left.discard(tp)
        return not left


def subscribe(consumer: Any, topic: str, recall: Recall) -> None:
    """Subscribe the writer's consumer with the recall as its rebalance listener."""
    recall.consumer = consumer
    consumer.subscribe([topic], listener=recall)
