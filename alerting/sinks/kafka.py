"""Alert events to Kafka, keyed by plant/machine (one machine's alerts stay in order)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

from aiokafka.errors import KafkaError

from alerting.sinks.base import SinkError
from plantmesh.connections import KafkaConnection
from plantmesh.contracts import AlertEvent, encode
from plantmesh.kafka.clients import Producer, make_producer, start_client


def event_key(event: AlertEvent) -> bytes:
    return f"{event.asset.plant}/{event.asset.machine}".encode()


class KafkaEventSink:
    name = "kafka"

    def __init__(self, connection: KafkaConnection, topic: str) -> None:
        self.connection = connection
        self.topic = topic
        self._producer: Producer | None = None

    async def start(self) -> None:
        # The shared producer: idempotent, acks=all, renewed when a refusal breaks its sequence.
        producer = make_producer(self.connection, "alerting")
        try:
            await start_client(producer)
        except KafkaError as exc:
            raise SinkError(f"cannot start Kafka producer: {exc}") from exc
        self._producer = producer

    async def publish(self, events: Sequence[AlertEvent]) -> None:
        if self._producer is None:
            await self.start()
        assert self._producer is not None
        pending: list[Awaitable[object]] = []
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
