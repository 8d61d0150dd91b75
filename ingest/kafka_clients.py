"""Kafka clients as ingest uses them: one producer setting for every role (idempotent,
`acks=all`), and clients that close what they half-opened when they fail to start."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code
from aiokafka.partitioner import murmur2

from ingest.renewing_producer import RenewingProducer
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
        partition: int | None = None,
    ) -> Awaitable[Any]: ...

    async def partitions_for(self, topic: str) -> set[int]: ...

    def create_batch(self) -> Any: ...

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Awaitable[Any]: ...


ProducerFactory = Callable[[], Producer]


def make_producer(kafka: KafkaConnection, role: str) -> Producer:
    def create() -> AIOKafkaProducer:
        # Idempotence keeps retried sends from duplicating or reordering within a partition.
        return AIOKafkaProducer(
            bootstrap_servers=kafka.bootstrap,
            client_id=f"{kafka.client_id}-{role}",
            enable_idempotence=True,
            acks="all",
            # An idempotent producer has one request in flight per partition, each waiting for
            # acks=all: fill every request (a 16 KiB batch holds only a handful of reading
            # batches) and let a few milliseconds of messages gather while one is under way.
            linger_ms=5,
            max_batch_size=1 << 20,
        )

    return RenewingProducer(create)


async def start_client(client: Any) -> None:
    """Start an aiokafka client; on failure close what it half-opened before re-raising."""
    try:
        await client.start()
    except BaseException:
        await client.stop()
        raise


async def ensure_compacted_topic(
    kafka: KafkaConnection, name: str, partitions: int, replication_factor: int
) -> None:
    """Create `name` with `cleanup.policy=compact` unless it exists (a state topic: Kafka keeps
    the latest value per key forever)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=kafka.bootstrap, client_id=f"{kafka.client_id}-admin"
    )
    try:
        await admin.start()
        if name in set(await admin.list_topics()):
            return
        topic = NewTopic(
            name, partitions, replication_factor, topic_configs={"cleanup.policy": "compact"}
        )
        response = await admin.create_topics([topic])
        for _, code, *_rest in response.topic_errors:
            if code and for_code(code) is not TopicAlreadyExistsError:
                raise for_code(code)(f"cannot create compacted topic {name}")
    finally:
        await admin.close()


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
