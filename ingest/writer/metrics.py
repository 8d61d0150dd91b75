"""The writer's Prometheus metrics (`writer.metrics.listen`; off by default).

Nothing is counted twice: at each scrape plantmesh.metrics calls `families` on the writer's event
loop, which reads the WriterStats and the completeness ledger's state as they are. The names are
those the dashboards know (`plantmesh_ingest_*` with role="writer", `plantmesh_completeness_*`
per plant and gateway).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ingest.ledger.state import GatewayLedger
from ingest.writer.stats import WriterStats

ROLE = "writer"


def families(stats: WriterStats, gateways: Iterable[GatewayLedger] = ()) -> Iterator[Metric]:
    """The metric families of `stats` and of the ledger's `gateways` (those this writer owns)."""
    messages = CounterMetricFamily(
        "plantmesh_ingest_messages", "Messages taken in", labels=["role"]
    )
    messages.add_metric([ROLE], stats.messages)
    yield messages
    forwarded = CounterMetricFamily(
        "plantmesh_ingest_forwarded", "Messages passed on downstream", labels=["role"]
    )
    forwarded.add_metric([ROLE], stats.batches)
    yield forwarded
    dlq = CounterMetricFamily(
        "plantmesh_ingest_dlq",
        "Bad input sent to telemetry.dlq, by reason (a bad reading counts once)",
        labels=["role", "reason"],
    )
    for reason, count in sorted(stats.dlq_by_reason.items()):
        dlq.add_metric([ROLE, reason], count)
    yield dlq
    yield CounterMetricFamily(
        "plantmesh_ingest_readings_written",
        "Readings written to InfluxDB",
        value=stats.written_points,
    )
    yield CounterMetricFamily(
        "plantmesh_ingest_influx_write_failures",
        "InfluxDB write attempts that failed and were retried",
        value=stats.influx_failures,
    )
    yield GaugeMetricFamily(
        "plantmesh_ingest_paused",
        "1 while the writer holds its Kafka partitions paused (InfluxDB slow or down)",
        value=int(stats.paused),
    )
    yield from completeness(gateways)


COMPLETENESS = (
    (
        "batches_expected",
        "Batches the gateway's sequence numbers say were sent (sessions seen by this ledger)",
    ),
    ("batches_received", "Distinct batches received"),
    ("batches_missing", "Batches inside gaps"),
    ("duplicates", "Batches received more than once"),
    ("open_gaps", "Gaps not closed yet"),
)


def completeness(gateways: Iterable[GatewayLedger]) -> Iterator[Metric]:
    """One gauge family per figure, a sample per gateway."""
    gauges = [
        GaugeMetricFamily(f"plantmesh_completeness_{name}", doc, labels=["plant", "gateway"])
        for name, doc in COMPLETENESS
    ]
    expected, received, missing, duplicates, open_gaps = gauges
    for ledger in gateways:
        f = ledger.figures()
        labels = [ledger.plant, ledger.gateway_id]
        expected.add_metric(labels, f.expected)
        received.add_metric(labels, f.received)
        missing.add_metric(labels, f.missing)
        duplicates.add_metric(labels, f.duplicates)
        open_gaps.add_metric(labels, f.open_gaps)
    yield from gauges
