"""The publisher without a broker: batching into the buffer, the in-flight window that drains a
backlog in buffer order, acknowledgements, drops and what health reports."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from edge_agent.buffer import MemoryBatchBuffer
from edge_agent.config import AgentConfig, MqttSettings
from edge_agent.disk_buffer import DiskBatchBuffer
from edge_agent.mqtt_link import MAX_INFLIGHT, MqttLink
from edge_agent.publisher import Publisher
from plantmesh.contracts import AssetPath, Reading, ReadingBatch, decode

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def reading(machine: str, value: float) -> Reading:
    return Reading(
        asset=AssetPath(plant="p", area="a", line="l", machine=machine),
        signal="temp",
        value=value,
        source_ts=NOW,
        gateway_ts=NOW,
    )


def config(**overrides: object) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "gateway_id": "gw",
            "plant": "p",
            "namespace": "ns1",
            "mqtt": {"url": "mqtt://127.0.0.1:1"},
            "buffer": {"kind": "memory"},
            "sources": [
                {
                    "type": "modbus",
                    "name": "m",
                    "host": "127.0.0.1",
                    "devices": [
                        {
                            "unit_id": 1,
                            "profile": {"name": "p", "registers": [{"signal": "s", "address": 0}]},
                            "area": "a",
                            "line": "l",
                            "machine": "m",
                        }
                    ],
                }
            ],
            **overrides,
        }
    )


class FakeLink:
    """Stands in for MqttLink: records what is published, acks when told."""

    def __init__(self) -> None:
        self.is_connected = True
        self.sent: dict[int, tuple[str, bytes]] = {}
        self._mids = itertools.count(1)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int:
        mid = next(self._mids)
        self.sent[mid] = (topic, payload)
        return mid

    def seqs(self) -> list[int]:
        return [decode(ReadingBatch, p).seq for t, p in self.sent.values() if "readings" in t]


def connect(publisher: Publisher) -> FakeLink:
    link = FakeLink()
    publisher._attach(cast(MqttLink, link))
    publisher._pump()
    return link


def ack_all(publisher: Publisher, link: FakeLink) -> None:
    while publisher._inflight:
        mid = min(publisher._inflight)
        publisher._on_ack(cast(MqttLink, link), mid, True)


def fill(publisher: Publisher, machines: int) -> None:
    for m in range(machines):
        publisher.submit(reading(f"m{m}", float(m)))
    publisher.flush()


async def test_batches_go_to_the_buffer_while_offline() -> None:
    buffer = MemoryBatchBuffer(100)
    publisher = Publisher(config(), "sess", buffer)
    for i in range(3):
        publisher.submit(reading("m1", float(i)))
    publisher.submit(reading("m2", 9.0))
    assert publisher.flush() == 2
    assert publisher.flush() == 0
    held = buffer.read(0, 10)
    assert [b.topic for b in held] == [
        "ns1/plantmesh/v1/p/a/l/m1/readings",
        "ns1/plantmesh/v1/p/a/l/m2/readings",
    ]
    decoded = [decode(ReadingBatch, b.payload) for b in held]
    assert [(d.seq, len(d.readings)) for d in decoded] == [(0, 3), (1, 1)]
    assert [b.readings for b in held] == [3, 1]
    assert publisher.stats.readings_in == 4
    assert publisher.stats.batches_made == 2


@pytest.mark.parametrize("kind", ["memory", "disk"])
async def test_a_backlog_drains_in_order_through_a_bounded_window(
    kind: str, tmp_path: Path
) -> None:
    buffer = (
        MemoryBatchBuffer(10_000)
        if kind == "memory"
        else DiskBatchBuffer(tmp_path / "b.sqlite", 10_000, 1 << 30)
    )
    publisher = Publisher(config(), "sess", buffer)
    fill(publisher, 3 * MAX_INFLIGHT)  # made while offline
    link = connect(publisher)
    assert len(link.sent) == MAX_INFLIGHT  # never more in flight than the window
    fill(publisher, 2)  # new batches queue behind the backlog
    assert len(link.sent) == MAX_INFLIGHT
    ack_all(publisher, link)
    assert link.seqs() == list(range(3 * MAX_INFLIGHT + 2))
    assert len(buffer) == 0
    assert publisher.stats.batches_acked == 3 * MAX_INFLIGHT + 2
    assert publisher.stats.readings_acked == 3 * MAX_INFLIGHT + 2
    buffer.close()


async def test_after_a_reconnect_unacknowledged_batches_are_sent_again_first() -> None:
    publisher = Publisher(config(), "sess", MemoryBatchBuffer(100))
    link = connect(publisher)
    fill(publisher, 4)
    publisher._on_ack(cast(MqttLink, link), min(link.sent), True)  # seq 0 acked, 1-3 not
    again = connect(publisher)  # the connection dropped and came back
    fill(publisher, 1)
    assert again.seqs() == [1, 2, 3, 4]


async def test_a_late_ack_from_an_old_connection_is_ignored() -> None:
    publisher = Publisher(config(), "sess", MemoryBatchBuffer(100))
    old = connect(publisher)
    fill(publisher, 1)
    new = connect(publisher)
    publisher._on_ack(cast(MqttLink, old), min(old.sent), True)
    assert len(publisher.buffer) == 1
    ack_all(publisher, new)
    assert len(publisher.buffer) == 0


async def test_a_rejected_batch_is_dropped_and_counted() -> None:
    publisher = Publisher(config(), "sess", MemoryBatchBuffer(100))
    link = connect(publisher)
    fill(publisher, 1)
    publisher._on_ack(cast(MqttLink, link), min(link.sent), False)
    assert len(publisher.buffer) == 0
    assert publisher.stats.batches_rejected == 1
    assert publisher.health([]).dropped_batches == 1


async def test_full_queue_drops_and_counts_instead_of_blocking() -> None:
    publisher = Publisher(config(queue_size=2), "sess", MemoryBatchBuffer(10))
    for i in range(5):
        publisher.submit(reading("m1", float(i)))
    assert publisher.stats.readings_in == 2
    assert publisher.stats.dropped_readings == 3
    assert publisher.health([]).dropped_readings == 3
    publisher.flush()
    [kept] = publisher.buffer.read(0, 10)
    assert [r.value for r in decode(ReadingBatch, kept.payload).readings] == [0.0, 1.0]


async def test_health_reports_depth_age_and_every_kind_of_drop(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    first = DiskBatchBuffer(path, 1000, 1 << 20)
    with first._transaction():
        first._set_counter("writing", 2)  # a write the last run did not finish
    first._db.close()
    buffer = DiskBatchBuffer(path, 1, 1 << 20)
    publisher = Publisher(config(), "sess", buffer)
    fill(publisher, 2)  # room for one: the older is pushed out
    health = publisher.health([])
    assert health.dropped_batches == 3  # 2 torn + 1 full
    assert health.buffer_depth == 1
    assert health.oldest_unsent_age_s is not None
    buffer.close()


async def test_a_reloaded_publisher_continues_the_session_numbering() -> None:
    buffer = MemoryBatchBuffer(100)
    first = Publisher(config(), "sess", buffer)
    fill(first, 3)
    second = Publisher(config(), "sess", buffer, first_seq=first.batcher.next_seq)
    fill(second, 1)
    assert [decode(ReadingBatch, b.payload).seq for b in buffer.read(0, 10)] == [0, 1, 2, 3]


def test_client_certificate_needs_its_key_and_tls() -> None:
    ok = MqttSettings(url="mqtts://h:8883", cert_file="c.pem", key_file="k.pem")
    assert ok.tls
    with pytest.raises(ValueError, match="cert_file and key_file together"):
        MqttSettings(url="mqtts://h:8883", cert_file="c.pem")
    with pytest.raises(ValueError, match="need an mqtts:// url"):
        MqttSettings(url="mqtt://h:1883", ca_file="ca.pem")


async def test_tls_files_that_are_missing_fail_as_a_publish_error(tmp_path: Path) -> None:
    from edge_agent.errors import PublishError

    settings = MqttSettings(url="mqtts://127.0.0.1:1", ca_file=str(tmp_path / "nope.pem"))
    with pytest.raises(PublishError, match="TLS setup failed"):
        MqttLink(settings, "c", ("t", b""), on_ack=_ignore)


def _ignore(*_: Any) -> None:
    pass
