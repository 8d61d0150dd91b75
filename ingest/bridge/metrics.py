"""The bridge's Prometheus metrics (`bridge.metrics.listen`; off by default).

Nothing is counted twice: at each scrape plantmesh.metrics calls `families` on the bridge's
event loop, which reads the BridgeStats as they are. The names shared with the writer are those
the dashboards know (`plantmesh_ingest_*` with role="bridge"); the bridge's own are
`plantmesh_ingest_bridge_*`.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ingest.bridge.stats import BridgeStats

ROLE = "bridge"


def _by_role(name: str, doc: str, value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(f"plantmesh_ingest_{name}", doc, labels=["role"])
    family.add_metric([ROLE], value)
    return family


def families(stats: BridgeStats) -> Iterator[Metric]:
    yield _by_role("messages", "Messages taken in", stats.received)
    yield _by_role("forwarded", "Messages passed on downstream", stats.forwarded)
    dlq = CounterMetricFamily(
        "plantmesh_ingest_dlq",
        "Bad input sent to telemetry.dlq, by reason (a bad reading counts once)",
        labels=["role", "reason"],
    )
    for reason, count in sorted(stats.dlq_by_reason.items()):
        dlq.add_metric([ROLE, reason], count)
    yield dlq
    prefix = "plantmesh_ingest_bridge"
    yield CounterMetricFamily(
        f"{prefix}_dropped",
        "DLQ entries Kafka refused even on their own: given up on and acked to MQTT",
        value=stats.dropped,
    )
    yield CounterMetricFamily(
        f"{prefix}_send_failures",
        "Kafka sends that failed and were retried",
        value=stats.send_failures,
    )
    yield CounterMetricFamily(
        f"{prefix}_left_to_broker",
        "Messages not acked on purpose (connection lost or shutdown): the broker redelivers them",
        value=stats.left_to_broker,
    )
    yield CounterMetricFamily(
        f"{prefix}_mqtt_connects", "MQTT connections made", value=stats.connects
    )
    yield CounterMetricFamily(
        f"{prefix}_retained_skipped",
        "Retained reading batches acked and not forwarded again",
        value=stats.retained_skipped,
    )
    yield GaugeMetricFamily(
        f"{prefix}_in_flight",
        "MQTT messages received and not yet acked (bounded by bridge.max_in_flight)",
        value=stats.in_flight,
    )
