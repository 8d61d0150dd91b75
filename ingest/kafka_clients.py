"""Kafka clients as ingest uses them: one producer setting for every role (idempotent,
`acks=all`), and clients that close what they half-opened when they fail to start."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer

from plantmesh.connections import KafkaConnection


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
