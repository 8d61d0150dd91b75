from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge_agent.batching import Batcher
from edge_agent.buffer import BufferedBatch, MemoryBatchBuffer
from edge_agent.config import AgentConfig
from edge_agent.publisher import Publisher
from plantmesh.contracts import AssetPath, Reading, ReadingBatch, decode

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def reading(machine: str, value: float, signal: str = "temp") -> Reading:
    return Reading(
        asset=AssetPath(plant="p", area="a", line="l", machine=machine),
        signal=signal,
        value=value,
        source_ts=NOW,
        gateway_ts=NOW,
    )


def test_one_batch_per_machine_in_order_with_consecutive_seq() -> None:
    batcher = Batcher("gw", "s1")
    first = batcher.make_batches(
        [reading("m1", 1), reading("m2", 2), reading("m1", 3), reading("m3", 4)], NOW
    )
    assert [b.readings[0].asset.machine for b in first] == ["m1", "m2", "m3"]
    assert [r.value for r in first[0].readings] == [1.0, 3.0]
    assert [b.seq for b in first] == [0, 1, 2]
    second = batcher.make_batches([reading("m2", 5)], NOW)
    assert [b.seq for b in second] == [3]  # seq runs across intervals and machines
    assert all(b.gateway_id == "gw" and b.session_id == "s1" for b in first + second)
    assert batcher.make_batches([], NOW) == []


def test_large_intervals_are_split_into_several_batches() -> None:
    batcher = Batcher("gw", "s1", max_readings=2)
    batches = batcher.make_batches([reading("m1", float(i)) for i in range(5)], NOW)
    assert [len(b.readings) for b in batches] == [2, 2, 1]
    assert [b.seq for b in batches] == [0, 1, 2]
    assert [r.value for b in batches for r in b.readings] == [0.0, 1.0, 2.0, 3.0, 4.0]


def batch(seq: int) -> BufferedBatch:
    return BufferedBatch(session_id="s", seq=seq, topic="t", payload=b"x")


def test_memory_buffer_keeps_order_acks_and_drops_the_oldest_when_full() -> None:
    buffer = MemoryBatchBuffer(max_batches=3)
    assert buffer.oldest_age_s() is None
    assert [buffer.put(batch(i)) for i in range(3)] == [[], [], []]
    assert buffer.ack(("s", 1))
    assert not buffer.ack(("s", 1))
    assert buffer.put(batch(3)) == []
    assert [b.seq for b in buffer.put(batch(4))] == [0]
    assert [b.seq for b in buffer.unacked()] == [2, 3, 4]
    assert len(buffer) == 3
    age = buffer.oldest_age_s()
    assert age is not None
    assert age >= 0
    with pytest.raises(ValueError, match="at least 1"):
        MemoryBatchBuffer(0)


def test_memory_buffer_is_bounded_by_bytes_too() -> None:
    buffer = MemoryBatchBuffer(max_batches=100, max_bytes=10)
    sized = [BufferedBatch(session_id="s", seq=i, topic="t", payload=b"1234") for i in range(4)]
    assert buffer.put(sized[0]) == []
    assert buffer.put(sized[1]) == []
    assert [b.seq for b in buffer.put(sized[2])] == [0]  # 12 bytes would not fit
    assert buffer.bytes == 8
    assert buffer.ack(("s", 1))
    assert buffer.bytes == 4
    big = BufferedBatch(session_id="s", seq=9, topic="t", payload=b"x" * 50)
    assert [b.seq for b in buffer.put(big)] == [2]  # the newest is kept even if oversized
    assert [b.seq for b in buffer.unacked()] == [9]


def config(**overrides: object) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "gateway_id": "gw",
            "plant": "p",
            "namespace": "ns1",
            "mqtt": {"url": "mqtt://127.0.0.1:1"},
            "sources": [
                {
                    "type": "opcua",
                    "name": "o",
                    "endpoint": "opc.tcp://h:1",
                    "nodes": [
                        {
                            "node_id": "ns=2;i=1",
                            "area": "a",
                            "line": "l",
                            "machine": "m",
                            "signal": "s",
                        }
                    ],
                }
            ],
            **overrides,
        }
    )


async def test_publisher_batches_into_the_buffer_while_offline() -> None:
    buffer = MemoryBatchBuffer(100)
    publisher = Publisher(config(), "sess", buffer)
    for i in range(3):
        publisher.submit(reading("m1", float(i)))
    publisher.submit(reading("m2", 9.0))
    assert publisher.flush() == 2
    assert publisher.flush() == 0
    topics = [b.topic for b in buffer.unacked()]
    assert topics == ["ns1/plantmesh/v1/p/a/l/m1/readings", "ns1/plantmesh/v1/p/a/l/m2/readings"]
    decoded = [decode(ReadingBatch, b.payload) for b in buffer.unacked()]
    assert [(d.seq, len(d.readings)) for d in decoded] == [(0, 3), (1, 1)]
    assert publisher.stats.readings_in == 4
    assert publisher.stats.batches_made == 2


async def test_full_queue_drops_and_counts_instead_of_blocking() -> None:
    publisher = Publisher(config(queue_size=2), "sess", MemoryBatchBuffer(10))
    for i in range(5):
        publisher.submit(reading("m1", float(i)))
    assert publisher.stats.readings_in == 2
    assert publisher.stats.dropped_readings == 3
    assert publisher.health([]).dropped_readings == 3
    publisher.flush()
    [kept] = publisher.buffer.unacked()
    assert [r.value for r in decode(ReadingBatch, kept.payload).readings] == [0.0, 1.0]


async def test_full_buffer_counts_dropped_batches_in_health() -> None:
    publisher = Publisher(config(buffer={"max_batches": 1}), "sess", MemoryBatchBuffer(1))
    publisher.submit(reading("m1", 1.0))
    publisher.submit(reading("m2", 2.0))
    publisher.flush()
    health = publisher.health([])
    assert health.dropped_batches == 1
    assert health.buffer_depth == 1
