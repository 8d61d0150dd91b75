"""ensure_topics against a real broker: creation, leaders, races, refusals."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from plantmesh.connections import KafkaConnection
from plantmesh.kafka.admin import TopicSetupError, ensure_topics
from tests.support.kafka import kafka_options

pytestmark = pytest.mark.integration


@pytest.fixture
async def admin(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(**kafka_options(kafka_bootstrap))
    await client.start()
    yield client
    await client.close()


def connection(bootstrap: str, namespace: str) -> KafkaConnection:
    return KafkaConnection(bootstrap=bootstrap, client_id=namespace)


async def test_creates_the_missing_topics_with_leaders_and_only_once(
    kafka_bootstrap: str, namespace: str, admin: AIOKafkaAdminClient
) -> None:
    kafka = connection(kafka_bootstrap, namespace)
    names = [f"{namespace}.a", f"{namespace}.b", f"{namespace}.a"]
    created = await ensure_topics(kafka, names, partitions=3, replication_factor=1)
    assert created == [f"{namespace}.a", f"{namespace}.b"]
    described = await admin.describe_topics(created)
    assert sorted(t["topic"] for t in described) == created
    for topic in described:
        assert topic["error_code"] == 0
        assert len(topic["partitions"]) == 3
        # Returned only once every partition has a leader: usable at once.
        assert all(p["leader"] >= 0 for p in topic["partitions"])

    more = [f"{namespace}.b", f"{namespace}.c"]
    assert await ensure_topics(kafka, more, partitions=1, replication_factor=1) == [
        f"{namespace}.c"
    ]
    assert await ensure_topics(kafka, names + more, partitions=1, replication_factor=1) == []


async def test_losing_a_creation_race_is_fine(
    kafka_bootstrap: str, namespace: str, admin: AIOKafkaAdminClient
) -> None:
    kafka = connection(kafka_bootstrap, namespace)
    names = [f"{namespace}.raced.{n}" for n in range(3)]
    results = await asyncio.gather(
        *(ensure_topics(kafka, names, partitions=1, replication_factor=1) for _ in range(3))
    )
    created = [name for result in results for name in result]
    assert sorted(created) == names  # each created by exactly one of them, none failed
    assert set(names) <= set(await admin.list_topics())


async def test_a_refused_topic_is_a_topic_setup_error(kafka_bootstrap: str, namespace: str) -> None:
    kafka = connection(kafka_bootstrap, namespace)
    with pytest.raises(TopicSetupError, match=f"{namespace}.too-many-replicas"):
        # The dev broker is a single node: three replicas cannot be placed.
        await ensure_topics(
            kafka, [f"{namespace}.too-many-replicas"], partitions=1, replication_factor=3
        )


async def test_an_unreachable_broker_is_a_kafka_error(namespace: str) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kafka = connection(f"127.0.0.1:{port}", namespace)
    with pytest.raises(KafkaError):
        await ensure_topics(kafka, [f"{namespace}.x"], partitions=1, replication_factor=1)
