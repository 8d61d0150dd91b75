"""The bridge's metrics are its BridgeStats, under the names the dashboards know."""

from __future__ import annotations

import asyncio
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from ingest.bridge import BridgeStats
from ingest.bridge.metrics import families
from plantmesh.metrics import MetricsServer
from plantmesh.topics import DlqReason

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _stats() -> BridgeStats:
    return BridgeStats(
        received=10,
        forwarded=6,
        dlq=3,
        dlq_by_reason={DlqReason.OVERSIZED: 1, DlqReason.FOREIGN_TOPIC: 2},
        dropped=1,
        send_failures=4,
        left_to_broker=5,
        in_flight=2,
        connects=2,
    )


def _samples(stats: BridgeStats) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families(stats)
        for sample in family.samples
    }


def test_each_count_is_read_from_the_stats() -> None:
    samples = _samples(_stats())
    bridge = frozenset({("role", "bridge")})
    assert samples[("plantmesh_ingest_messages_total", bridge)] == 10
    assert samples[("plantmesh_ingest_forwarded_total", bridge)] == 6
    for reason, count in (("oversized", 1), ("foreign_topic", 2)):
        labels = frozenset({("role", "bridge"), ("reason", reason)})
        assert samples[("plantmesh_ingest_dlq_total", labels)] == count
    assert samples[("plantmesh_ingest_bridge_dropped_total", frozenset())] == 1
    assert samples[("plantmesh_ingest_bridge_send_failures_total", frozenset())] == 4
    assert samples[("plantmesh_ingest_bridge_left_to_broker_total", frozenset())] == 5
    assert samples[("plantmesh_ingest_bridge_mqtt_connects_total", frozenset())] == 2
    assert samples[("plantmesh_ingest_bridge_in_flight", frozenset())] == 2


def test_a_reason_not_seen_has_no_sample() -> None:
    names = {name for name, _ in _samples(BridgeStats())}
    assert "plantmesh_ingest_dlq_total" not in names
    assert "plantmesh_ingest_messages_total" in names


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text: str = response.read().decode()
    return text


async def test_a_scrape_reads_the_stats_as_they_are_now() -> None:
    stats = _stats()
    server = MetricsServer(lambda: families(stats), ("127.0.0.1", 0), asyncio.get_running_loop())
    try:
        stats.received += 1
        text = await asyncio.to_thread(_scrape, server.port)  # the loop must stay free
    finally:
        server.close()
    [messages] = [
        f for f in text_string_to_metric_families(text) if f.name == "plantmesh_ingest_messages"
    ]
    assert [(s.labels, s.value) for s in messages.samples] == [({"role": "bridge"}, 11.0)]
    assert 'plantmesh_ingest_dlq_total{reason="oversized",role="bridge"} 1.0' in text
