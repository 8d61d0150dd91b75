"""Kafka clients as every service uses them: one producer setting for every role (idempotent,
`acks=all`, renewed when its sequence numbers fall out of step), one consumer setting (offsets
committed by the service, never automatically), and clients that close what they half-opened
when they fail to start."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2

from plantmesh.connections import KafkaConnection
from plantmesh.kafka.renewing_producer import RenewingProducer
from plantmesh.kafka.security import kafka_client_options


class Producer(Protocol):
    """What services need of a Kafka producer (RenewingProducer; a stub in tests)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def flush(self) -> None: ...

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> Awaitable[Any]: ...

    async def partitions_for(self, topic: str) -> set[int]: ...

    def create_batch(self) -> Any: ...

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Awaitable[Any]: ...


ProducerFactory = Callable[[], Producer]


def make_producer(kafka: KafkaConnection, role: str, **settings: Any) -> RenewingProducer:
    """The producer of every service role: `<client_id>-<role>` in the broker's logs.
    `settings`: further AIOKafkaProducer arguments (e.g. max_request_size for state topics)."""

    def create() -> AIOKafkaProducer:
        # Idempotence keeps retried sends from duplicating or reordering within a partition.
        return AIOKafkaProducer(
            **kafka_client_options(kafka),  # read again at each renewal: a rotated password
            client_id=f"{kafka.client_id}-{role}",
            enable_idempotence=True,
            acks="all",
            # An idempotent producer has one request in flight per partition, each waiting for
            # acks=all: fill every request (a 16 KiB batch holds only a handful of reading
            # batches) and let a few milliseconds of messages gather while one is under way.
            linger_ms=5,
            max_batch_size=1 << 20,
            **settings,
        )

    return RenewingProducer(create)


def make_consumer(
    kafka: KafkaConnection,
    role: str,
    *topics: str,
    group_id: str | None,
    auto_offset_reset: str = "earliest",
    **settings: Any,
) -> AIOKafkaConsumer:
    """A consumer whose offsets move only when the service commits them (after its sinks took
    what it read). `settings`: further AIOKafkaConsumer arguments (fetch sizes, poll limits)."""
    return AIOKafkaConsumer(
        *topics,
        **kafka_client_options(kafka),
        client_id=f"{kafka.client_id}-{role}",
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset=auto_offset_reset,
        **settings,
    )


async def start_client(client: Any) -> None:
    """Start an aiokafka client; on failure close what it half-opened before re-raising."""
    try:
        await client.start()
    except BaseException:
        await client.stop()
        raise


def key_partition(key: bytes, count: int) -> int:
    """The partition Kafka's default partitioner gives `key` among `count` partitions."""
    hashed: int = murmur2(key) & 0x7FFFFFFF
    return hashed % count


class KeyPartitions:
    """Kafka's default partition for a key (murmur2, as the Java client and aiokafka compute
    it), remembered per key: aiokafka computes it in Python for every message, and a bridge
    sends the same few thousand plant/machine keys over and over."""

    def __init__(self, producer: Producer, max_keys: int = 100_000) -> None:
        self._producer = producer
        self._counts: dict[str, int] = {}
        self._hashes: dict[bytes, int] = {}
        self._max_keys = max_keys
        self._turn = 0

    async def partition(self, topic: str, key: bytes | None) -> int:
        """Keyless messages take the partitions in turn."""
        count = self._counts.get(topic)
        if count is None:
            count = self._counts[topic] = len(await self._producer.partitions_for(topic))
        return self._pick(key, count)

    def known(self, topic: str, key: bytes | None) -> int | None:
        """`partition` without waiting: None while the topic's partition count is not known."""
        count = self._counts.get(topic)
        return None if count is None else self._pick(key, count)

    def _pick(self, key: bytes | None, count: int) -> int:
        if key is None:
            self._turn += 1
            return self._turn % count
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= self._max_keys:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return hashed % count
