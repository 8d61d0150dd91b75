"""Shards: one engine per input partition; gateway messages go to the shard of their gateway."""

from __future__ import annotations

from aiokafka import ConsumerRecord

from alerting.catalogue import load_catalogue
from alerting.config import AlertingConfig
from alerting.engine import Engine
from alerting.shards import Shards
from plantmesh.kafka.clients import key_partition
from plantmesh.topics import Topics, gateway_key


def engine() -> Engine:
    config = AlertingConfig.model_validate({"rules": []})
    return Engine.from_config(config.rules, load_catalogue(config.catalogue))


def test_gateway_messages_reach_the_shard_of_their_gateways_batches() -> None:
    # Topics with different partition counts: a status record is placed by its key, as the
    # gateway's normalized batches are; one for a gateway another process owns is skipped.
    topics = Topics("t")
    shards = Shards(topics, engine)
    shards.partitions = 4
    key = gateway_key("plant-a", "gw-1")
    mine = key_partition(key, 4)
    shards.add(mine, None)

    def record(partition: int, key: bytes) -> ConsumerRecord[bytes, bytes]:
        return ConsumerRecord(topics.gateway_status, partition, 7, 0, 0, key, b"{}", None, 2, 2, [])

    assert shards.shard_of(record(0, key)) is shards.by_partition[mine]
    other = next(k for i in range(50) if key_partition(k := f"p/gw-{i}".encode(), 4) != mine)
    assert shards.shard_of(record(0, other)) is None
