"""The ingest producer against a real Kafka: a message the topic refuses as too large must not
wedge its partition (aiokafka's idempotent producer would fail every later send there with
OutOfOrderSequenceNumber)."""

from __future__ import annotations

import pytest
from aiokafka.errors import MessageSizeTooLargeError

from plantmesh.connections import KafkaConnection
from plantmesh.kafka.clients import make_producer
from plantmesh.kafka.renewing_producer import RenewingProducer
from tests.support.kafka import consume, create_small_topic

pytestmark = pytest.mark.integration


async def test_a_refused_message_does_not_wedge_the_partition(
    namespace: str, kafka_bootstrap: str
) -> None:
    topic = f"{namespace}.small"
    await create_small_topic(kafka_bootstrap, topic, 2000)
    producer = make_producer(KafkaConnection(bootstrap=kafka_bootstrap, client_id=namespace), "t")
    assert isinstance(producer, RenewingProducer)
    await producer.start()
    try:
        first = await producer.send(topic, value=b"before", partition=0)
        await first
        refused = await producer.send(topic, value=b"x" * 5000, partition=0)
        with pytest.raises(MessageSizeTooLargeError):
            await refused
        for value in (b"after-1", b"after-2"):
            await (await producer.send(topic, value=value, partition=0))
        assert producer.renewals == 1
    finally:
        await producer.stop()
    records = await consume(kafka_bootstrap, topic, 3)
    assert [r.value for r in records] == [b"before", b"after-1", b"after-2"]
