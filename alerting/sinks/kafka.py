"""Alert events to Kafka, keyed by plant/machine (one machine's alerts stay in order)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from alerting.sinks.base import SinkError
from plantmesh.connections import KafkaConnection
from plantmesh.contracts import AlertEvent, encode


def event_key(event: AlertEvent) -> bytes:
    return f"{event.asset.plant}/{event.asset.machine}".encode()


class KafkaEventSink:
    name = "kafka"

    def __init__(self, connection: KafkaConnection, topic: str) -> None:
        self.connection = connection
        self.topic = topic
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.connection.bootstrap,
            client_id=f"{self.connection.client_id}-alerting",
            enable_idempotence=True,
            acks="all",
        )
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise SinkError(f"cannot start Kafka producer: {exc}") from exc
        self._producer = producer

    async def publish(self, events: Sequence[AlertEvent]) -> None:
        if self._producer is None:
            await self.start()
        assert self._producer is not None
        pending: list[asyncio.Future[object]] = []
        error: BaseException | None = None
        try:
            for event in events:
                pending.append(
                    await self._producer.send(self.topic, encode(event), key=event_key(event))
                )
        except KafkaError as exc:
            error = exc
        # Await every accepted send, even after a failure, so no delivery result goes unobserved.
        results = await asyncio.gather(*pending, return_exceptions=True)
        error = error or next((r for r in results if isinstance(r, BaseException)), None)
        if error is not None:
            raise SinkError(f"cannot produce to {self.topic}: {error}") from error

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
