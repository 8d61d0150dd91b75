from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner

from plantmesh.kafka.clients import KeyPartitions


class _Producer:
    def __init__(self, count: int) -> None:
        self.count = count
        self.asked = 0

    async def partitions_for(self, topic: str) -> set[int]:
        self.asked += 1
        return set(range(self.count))


@pytest.mark.parametrize("count", [1, 3, 4, 12])
async def test_key_partitions_match_kafkas_default_partitioner(count: int) -> None:
    producer = _Producer(count)
    partitions = KeyPartitions(producer, max_keys=5)  # type: ignore[arg-type]
    everything = list(range(count))
    for i in range(40):
        key = f"plant-{i % 3}/machine-{i}".encode()
        expected = DefaultPartitioner()(key, everything, everything)
        assert await partitions.partition("raw", key) == expected
    assert producer.asked == 1  # the partition count is looked up once per topic
    assert partitions.known("raw", b"plant-0/machine-0") == await partitions.partition(
        "raw", b"plant-0/machine-0"
    )
    assert partitions.known("other", b"plant-0/machine-0") is None
    # Keyless messages take the partitions in turn.
    turns = [await partitions.partition("raw", None) for _ in range(2 * count)]
    assert sorted(turns) == sorted(everything * 2)
