"""The writer's metric families, read from its stats and its ledger's state at each scrape."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from ingest.ledger.state import GatewayLedger, SeqRecord
from ingest.writer.metrics import families
from ingest.writer.stats import WriterStats
from plantmesh.metrics import MetricsServer
from plantmesh.topics import DlqReason

Values = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def values(text: str) -> Values:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def exposed(metrics: Iterable[Metric]) -> Values:
    """What a scrape would show of `metrics`."""
    fixed = list(metrics)

    class Fixed:
        def collect(self) -> Iterable[Metric]:
            return fixed

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())
    return values(generate_latest(registry).decode())


def gateway() -> GatewayLedger:
    """Batches 0, 1, 1 again and 3 of one session: 4 expected, 3 received, a gap at 2."""
    ledger = GatewayLedger("plant-a", "gw-1")
    for seq in (0, 1, 1, 3):
        ledger.add(SeqRecord("plant-a", "gw-1", "s1", seq, readings=10), now=1000.0)
    return ledger


WRITER = (("role", "writer"),)


def test_the_stats_become_the_writer_families() -> None:
    stats = WriterStats(
        messages=12,
        batches=9,
        written_points=90,
        dlq=3,
        dlq_by_reason={DlqReason.MALFORMED_JSON: 2, DlqReason.KAFKA_REJECTED: 1},
        influx_failures=4,
        paused=True,
    )
    got = exposed(families(stats))
    assert got[("plantmesh_ingest_messages_total", WRITER)] == 12
    assert got[("plantmesh_ingest_forwarded_total", WRITER)] == 9
    dlq = "plantmesh_ingest_dlq_total"
    assert got[(dlq, (("reason", "malformed_json"), ("role", "writer")))] == 2
    assert got[(dlq, (("reason", "kafka_rejected"), ("role", "writer")))] == 1
    assert got[("plantmesh_ingest_readings_written_total", ())] == 90
    assert got[("plantmesh_ingest_influx_write_failures_total", ())] == 4
    assert got[("plantmesh_ingest_paused", ())] == 1
    assert not any(name.startswith("plantmesh_completeness") for name, _ in got)


def test_the_ledger_figures_become_gauges_per_gateway() -> None:
    got = exposed(families(WriterStats(), [gateway()]))
    labels = (("gateway", "gw-1"), ("plant", "plant-a"))
    assert got[("plantmesh_completeness_batches_expected", labels)] == 4
    assert got[("plantmesh_completeness_batches_received", labels)] == 3
    assert got[("plantmesh_completeness_batches_missing", labels)] == 1
    assert got[("plantmesh_completeness_duplicates", labels)] == 1
    assert got[("plantmesh_completeness_open_gaps", labels)] == 1
    assert got[("plantmesh_ingest_paused", ())] == 0


async def test_a_scrape_reads_the_stats_as_they_are_then() -> None:
    stats = WriterStats(messages=1)
    ledger = gateway()
    server = MetricsServer(
        lambda: families(stats, [ledger]), ("127.0.0.1", 0), asyncio.get_running_loop()
    )

    def scrape() -> Values:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return values(response.read().decode())

    try:
        assert (await asyncio.to_thread(scrape))[("plantmesh_ingest_messages_total", WRITER)] == 1
        stats.messages = 5
        ledger.add(SeqRecord("plant-a", "gw-1", "s1", 2, readings=10), now=1001.0)
        got = await asyncio.to_thread(scrape)
    finally:
        server.close()
    assert got[("plantmesh_ingest_messages_total", WRITER)] == 5
    labels = (("gateway", "gw-1"), ("plant", "plant-a"))
    assert got[("plantmesh_completeness_open_gaps", labels)] == 0
