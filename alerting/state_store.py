"""Where checkpoints live: the compacted topic alerting.state, one record per consumer group
and input partition (key `<group_id>/<partition>`, sent to state partition `partition mod` the
state topic's partition count, so a new owner reads one partition, not the whole topic).

A checkpoint is an engine with the input offsets it has consumed up to (checkpoint.py), so state
and offsets are written in one record: restoring one gives both, and the consumer seeks to its
offsets whatever the group committed. Also here: the alert events published since a time, which
a replay after a crash must not publish a second time (replay.py).

The network-incident stage keeps its correlators' checkpoints the same way, in its own compacted
topic incidents.state (`role` names its Kafka clients)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from alerting.checkpoint import Checkpoint, CheckpointError, load, packed, pickled
from plantmesh.connections import KafkaConnection
from plantmesh.contracts import AlertEvent, DecodeError, decode, is_transition
from plantmesh.kafka.clients import make_consumer, make_producer, start_client

log = logging.getLogger(__name__)

MAX_CHECKPOINT_BYTES = 32 << 20
"""The largest checkpoint (compressed) the state topic and its producer accept."""
STATE_TOPIC_CONFIGS = {
    "cleanup.policy": "compact",
    "max.message.bytes": str(MAX_CHECKPOINT_BYTES),
    # Compaction only cleans closed segments: close them often, or a restore reads every
    # checkpoint of the last week.
    "segment.ms": str(10 * 60 * 1000),
    "min.cleanable.dirty.ratio": "0.1",
}
CLOCK_MARGIN = timedelta(seconds=30)
"""Alert events are looked for from this long before a checkpoint (producer clocks differ)."""

EventId = tuple[str, str, datetime]
"""What makes an alert event the same one again: its alert id, kind and event time."""


def event_id(event: AlertEvent) -> EventId:
    return (event.alert_id, event.kind.value, event.at)


Snapshot = tuple[int, bytes]
"""A checkpoint's input partition and its pickle (before compression)."""


def snapshot(checkpoint: Checkpoint) -> Snapshot:
    """The checkpoint as of now: pickling holds the GIL and must see a consistent engine, so
    it runs on the event loop, between polls."""
    return checkpoint.partition, pickled(checkpoint)


class CheckpointTooLargeError(Exception):
    """A checkpoint above MAX_CHECKPOINT_BYTES: not saved (the previous one stands)."""


class StateStore:
    def __init__(
        self, connection: KafkaConnection, topic: str, group_id: str, role: str = "alerting"
    ) -> None:
        self.connection = connection
        self.topic = topic
        self.group_id = group_id
        self.role = role
        self._producer = make_producer(
            connection, f"{role}-state", max_request_size=MAX_CHECKPOINT_BYTES + (1 << 20)
        )
        self._partitions = 1
        self.saved = 0
        self.unreadable = 0

    async def start(self) -> None:
        await start_client(self._producer)
        self._partitions = len(await self._producer.partitions_for(self.topic))

    async def partition_count(self, topic: str) -> int:
        return len(await self._producer.partitions_for(topic))

    async def close(self) -> None:
        await self._producer.stop()

    def _key(self, partition: int) -> bytes:
        return f"{self.group_id}/{partition}".encode()

    async def write(self, snapshots: list[Snapshot]) -> None:
        """Checkpoints already pickled (`snapshot`, taken at a consistent point) durably written
        (acks=all) before this returns; raises KafkaError or CheckpointTooLargeError (then the
        others were still written)."""
        pending = []
        too_large: list[str] = []
        for partition, data in snapshots:
            # Compressing releases the GIL, so it runs beside the event loop.
            data = await asyncio.to_thread(packed, data)
            if len(data) > MAX_CHECKPOINT_BYTES:
                too_large.append(f"partition {partition}: {len(data)} bytes")
                continue
            pending.append(
                await self._producer.send(
                    self.topic,
                    data,
                    key=self._key(partition),
                    partition=partition % self._partitions,
                )
            )
        for future in pending:
            await future
        self.saved += len(pending)
        if too_large:
            raise CheckpointTooLargeError(
                f"checkpoint above {MAX_CHECKPOINT_BYTES} bytes: {', '.join(too_large)}"
            )

    async def published_since(self, topic: str, since: datetime) -> set[EventId]:
        """The ids of the alert events on `topic` produced since `since` (less CLOCK_MARGIN)."""
        tps = [TopicPartition(topic, p) for p in sorted(await self._producer.partitions_for(topic))]
        reader = make_consumer(self.connection, f"{self.role}-replay-load", group_id=None)
        await start_client(reader)
        try:
            reader.assign(tps)
            ms = int((since - CLOCK_MARGIN).timestamp() * 1000)
            starts = await reader.offsets_for_times(dict.fromkeys(tps, ms))
            for tp in tps:
                found = starts.get(tp)
                if found is None:
                    await reader.seek_to_end(tp)
                else:
                    reader.seek(tp, found.offset)
            ids: set[EventId] = set()
            for record in await _read_to_end(reader, tps):
                if is_transition(record.headers):
                    continue  # the lifecycle's records share the topic
                try:
                    ids.add(event_id(decode(AlertEvent, record.value or b"")))
                except DecodeError:
                    continue
            return ids
        finally:
            await reader.stop()

    async def load(self, partitions: set[int]) -> dict[int, Checkpoint]:
        """The latest checkpoint of each of these input partitions that has one."""
        wanted = {self._key(p): p for p in partitions}
        sources = sorted({p % self._partitions for p in partitions})
        latest: dict[bytes, bytes | None] = {}
        reader = make_consumer(self.connection, f"{self.role}-state-load", group_id=None)
        await start_client(reader)
        try:
            tps = [TopicPartition(self.topic, p) for p in sources]
            reader.assign(tps)
            await reader.seek_to_beginning(*tps)
            for record in await _read_to_end(reader, tps):
                if record.key in wanted:
                    latest[record.key] = record.value
        finally:
            await reader.stop()
        found: dict[int, Checkpoint] = {}
        for key, value in latest.items():
            if value is None:
                continue
            try:
                found[wanted[key]] = load(value)
            except CheckpointError as exc:
                self.unreadable += 1
                log.error("ignoring the checkpoint of %s (starting it afresh): %s", key, exc)
        return found


async def _read_to_end(
    reader: AIOKafkaConsumer, tps: list[TopicPartition]
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record from the reader's positions to the end offsets as of now."""
    ends = await reader.end_offsets(tps)
    records: list[ConsumerRecord[bytes, bytes]] = []
    left = set(tps)
    while left:
        left = {tp for tp in left if await reader.position(tp) < ends[tp]}
        if left:
            for batch in (await reader.getmany(*left, timeout_ms=500)).values():
                records.extend(batch)
    return records
