"""Kafka helpers shared by the integration tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.waiting import async_wait_for


async def consume(
    bootstrap: str,
    topic: str,
    count: int,
    timeout: float = 20,
    until: Callable[[list[Any]], bool] | None = None,
) -> list[Any]:
    """Read the topic from the start until `count` records arrived (or `until` holds)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
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


async def create_small_topic(bootstrap: str, name: str, max_message_bytes: int) -> None:
    """One partition that refuses record batches over `max_message_bytes` (topic config
    `max.message.bytes`), to make Kafka refuse a message as too large."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        limit = {"max.message.bytes": str(max_message_bytes)}
        await admin.create_topics([NewTopic(name, 1, 1, topic_configs=limit)])
    finally:
        await admin.close()
