"""The Prometheus metrics endpoint (`metrics: {listen: "127.0.0.1:9108"}`; off by default).

Nothing is counted twice: at each scrape plantmesh.metrics takes one snapshot of the agent's own
counters (publisher stats, buffer, per-source health) on the event loop thread, where they
live, and `families` turns it into metric families.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from edge_agent.buffer import BufferDrops
from edge_agent.publisher_stats import PublisherStats
from plantmesh.contracts import SourceHealth

if TYPE_CHECKING:
    from edge_agent.agent import Agent

log = logging.getLogger(__name__)

PREFIX = "plantmesh_agent"


@dataclass(frozen=True)
class Snapshot:
    stats: PublisherStats
    drops: BufferDrops
    connected: bool
    buffer_depth: int
    buffer_bytes: int
    oldest_unsent_age_s: float | None
    sources: list[SourceHealth]
    reloads: int


def snapshot(agent: Agent) -> Snapshot:
    """Everything a scrape reports; call on the event loop thread."""
    publisher = agent.publisher
    return Snapshot(
        stats=replace(publisher.stats),
        drops=replace(agent.buffer.drops),
        connected=publisher.connected,
        buffer_depth=len(agent.buffer),
        buffer_bytes=agent.buffer.bytes,
        oldest_unsent_age_s=agent.buffer.oldest_age_s(),
        sources=agent.source_health(),
        reloads=agent.reloads,
    )


def families(snap: Snapshot) -> Iterator[Metric]:
    stats = snap.stats

    def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
        return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value)

    def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)

    yield counter("readings_in", "Readings taken from sources into the queue", stats.readings_in)
    yield counter(
        "readings_dropped", "Readings refused because the queue was full", stats.dropped_readings
    )
    yield counter(
        "readings_out", "Readings in batches the broker acknowledged", stats.readings_acked
    )
    yield counter("batches_made", "Reading batches made", stats.batches_made)
    yield counter(
        "batches_published", "Batch PUBLISH packets, resends included", stats.batches_sent
    )
    yield counter("batches_acked", "Batches acknowledged by the broker", stats.batches_acked)
    dropped = CounterMetricFamily(
        f"{PREFIX}_batches_dropped", "Batches given up on, by reason", labels=["reason"]
    )
    for reason, value in (
        ("buffer_full", snap.drops.full),
        ("expired", snap.drops.expired),
        ("torn_write", snap.drops.torn),
        ("write_failed", snap.drops.failed),
        ("rejected", stats.batches_rejected),
        ("lost_at_stop", stats.batches_lost_at_stop),
    ):
        dropped.add_metric([reason], value)
    yield dropped
    yield counter("reconnects", "MQTT reconnects after the first connection", stats.reconnects)
    yield counter("config_reloads", "Config reloads applied", snap.reloads)
    yield gauge("mqtt_connected", "1 while connected to the broker", int(snap.connected))
    yield gauge("buffer_batches", "Batches not yet acknowledged", snap.buffer_depth)
    yield gauge("buffer_bytes", "Payload bytes of unacknowledged batches", snap.buffer_bytes)
    if snap.oldest_unsent_age_s is not None:
        yield gauge(
            "buffer_oldest_age_seconds", "Age of the oldest unsent batch", snap.oldest_unsent_age_s
        )
    connected = GaugeMetricFamily(
        f"{PREFIX}_source_connected", "1 while the source is connected", labels=["source"]
    )
    errors = CounterMetricFamily(
        f"{PREFIX}_source_errors", "Errors talking to the source", labels=["source"]
    )
    seen = GaugeMetricFamily(
        f"{PREFIX}_source_last_seen_age_seconds",
        "Seconds since the source last delivered a reading",
        labels=["source"],
    )
    for source in snap.sources:
        connected.add_metric([source.name], int(source.connected))
        errors.add_metric([source.name], source.errors)
        if source.last_seen_age_s is not None:
            seen.add_metric([source.name], source.last_seen_age_s)
    yield from (connected, errors, seen)
