"""Kafka clients as ingest uses them: one producer setting for every role (idempotent,
`acks=all`), topics created explicitly at start, and clients started with retry."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from ingest.config import KafkaTopicSettings
from plantmesh.connections import KafkaConnection

log = logging.getLogger(__name__)


class KafkaSetupError(KafkaError):  # type: ignore[misc]  # aiokafka ships no type hints
    """The broker refused to create a topic."""


class Producer(Protocol):
    """What ingest needs of a Kafka producer (AIOKafkaProducer; a stub in tests)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def flush(self) -> None: ...

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Awaitable[Any]: ...


ProducerFactory = Callable[[], Producer]


def make_producer(kafka: KafkaConnection, role: str) -> Producer:
    # Idempotence keeps retried sends from duplicating or reordering within a partition.
    producer: Producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap,
        client_id=f"{kafka.client_id}-{role}",
        enable_idempotence=True,
        acks="all",
    )
    return producer


async def start_client(client: Any) -> None:
    """Start an aiokafka client; on failure close what it half-opened before re-raising."""
    try:
        await client.start()
    except BaseException:
        await client.stop()
        raise


async def ensure_topics(
    kafka: KafkaConnection, names: Sequence[str], settings: KafkaTopicSettings
) -> list[str]:
    """Create the topics that do not exist yet; return the ones created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=kafka.bootstrap, client_id=f"{kafka.client_id}-admin"
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [name for name in dict.fromkeys(names) if name not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(name, settings.partitions, settings.replication_factor) for name in missing]
        )
        for topic, code, *rest in response.topic_errors:
            if code and code != TopicAlreadyExistsError.errno:
                message = rest[0] if rest and rest[0] else for_code(code).__name__
                raise KafkaSetupError(f"cannot create topic {topic!r}: {message}")
        log.info(
            "created Kafka topics",
            extra={"topics": missing, "partitions": settings.partitions},
        )
        return missing
    finally:
        await admin.close()
