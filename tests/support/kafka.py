"""Kafka helpers: reading a topic from the start (a count, or every partition to its end), a topic that refuses large batches (real
Kafka), and a stand-in for aiokafka's BatchBuilder (no Kafka)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from plantmesh.connections import KafkaConnection
from plantmesh.kafka.security import kafka_client_options
from tests.support.waiting import async_wait_for


def kafka_options(bootstrap: str) -> dict[str, Any]:
    """`bootstrap_servers` and credentials for a test's own client: the environment's (on the
    secured local stack, its admin: tests/support/servers.py puts it there)."""
    return kafka_client_options(KafkaConnection(bootstrap=bootstrap))


async def consume(
    bootstrap: str,
    topic: str,
    count: int,
    timeout: float = 20,
    until: Callable[[list[Any]], bool] | None = None,
) -> list[Any]:
    """Read the topic from the start until `count` records arrived (or `until` holds)."""
    consumer = AIOKafkaConsumer(
        topic, **kafka_options(bootstrap), group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    got: list[Any] = []
    try:

        async def enough() -> bool:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                got.extend(records)
            return until(got) if until is not None else len(got) >= count

        await async_wait_for(enough, timeout, f"{count} messages on {topic}")
    finally:
        await consumer.stop()
    return got


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(**kafka_options(bootstrap))
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert described["error_code"] == 0, f"topic {topic}: error {described['error_code']}"
    return [TopicPartition(topic, p["partition"]) for p in described["partitions"]]


async def records_on(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on `topic` right now, headers included: reads each partition to its end."""
    partitions = await partitions_of(bootstrap, topic)
    consumer = AIOKafkaConsumer(**kafka_options(bootstrap), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[ConsumerRecord[bytes, bytes]] = []

        async def caught_up() -> bool:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                out.extend(records)
            positions = {tp: await consumer.position(tp) for tp in partitions}
            return all(positions[tp] >= ends[tp] for tp in partitions)

        await async_wait_for(caught_up, 20, f"reading {topic} to its end")
        return out
    finally:
        await consumer.stop()


async def read_all(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    """Every (key, value) on `topic` right now."""
    return [(r.key, r.value) for r in await records_on(bootstrap, topic)]


async def committed_and_ends(
    bootstrap: str, group: str, topic: str
) -> tuple[dict[TopicPartition, int | None], dict[TopicPartition, int]]:
    """Per partition of `topic`: the offset `group` committed (None: none yet) and the end."""
    admin = AIOKafkaAdminClient(**kafka_options(bootstrap))
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    partitions = await partitions_of(bootstrap, topic)
    consumer = AIOKafkaConsumer(**kafka_options(bootstrap), enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    offsets = {tp: committed[tp].offset if tp in committed else None for tp in partitions}
    return offsets, ends


async def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """Records on `topic` the group has not committed yet, over all partitions."""
    committed, ends = await committed_and_ends(bootstrap, group, topic)
    return sum(end - (committed[tp] or 0) for tp, end in ends.items())


async def create_small_topic(bootstrap: str, name: str, max_message_bytes: int) -> None:
    """One partition that refuses record batches over `max_message_bytes` (topic config
    `max.message.bytes`), to make Kafka refuse a message as too large."""
    admin = AIOKafkaAdminClient(**kafka_options(bootstrap))
    await admin.start()
    try:
        limit = {"max.message.bytes": str(max_message_bytes)}
        await admin.create_topics([NewTopic(name, 1, 1, topic_configs=limit)])
    finally:
        await admin.close()


class FakeBatch:
    """A stand-in for aiokafka's BatchBuilder, for tests whose producer acknowledges on command.
    Takes up to `capacity` messages (the first one always), keeping their values."""

    def __init__(self, capacity: int = 1_000_000) -> None:
        self.capacity = capacity
        self.values: list[bytes] = []
        self.closed = False

    def append(
        self,
        *,
        timestamp: int | None,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]],
    ) -> bool | None:
        if self.closed or (self.values and len(self.values) >= self.capacity):
            return None
        self.values.append(value)
        return True

    def close(self) -> None:
        self.closed = True
