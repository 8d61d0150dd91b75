"""Prometheus metrics of the bridge and the writer, each instance in its own registry (tests run
several in one process), served on `<role>.metrics.listen` when that is set."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from plantmesh.connections import MetricsEndpoint

log = logging.getLogger(__name__)


class IngestMetrics:
    def __init__(self, role: str) -> None:
        self.role = role
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "plantmesh_ingest_messages", "Messages taken in", ["role"], registry=r
        ).labels(role)
        self.dlq = Counter(
            "plantmesh_ingest_dlq",
            "Bad input sent to telemetry.dlq, by reason (a bad reading counts once)",
            ["role", "reason"],
            registry=r,
        )
        self.forwarded = Counter(
            "plantmesh_ingest_forwarded", "Messages passed on downstream", ["role"], registry=r
        ).labels(role)
        self.readings_written = Counter(
            "plantmesh_ingest_readings_written", "Readings written to InfluxDB", registry=r
        )
        self.influx_failures = Counter(
            "plantmesh_ingest_influx_write_failures",
            "InfluxDB write attempts that failed and were retried",
            registry=r,
        )
        self.paused = Gauge(
            "plantmesh_ingest_paused",
            "1 while the writer holds its Kafka partitions paused (InfluxDB slow or down)",
            registry=r,
        )
        labels = ["plant", "gateway"]
        self.batches_expected = Gauge(
            "plantmesh_completeness_batches_expected",
            "Batches the gateway's sequence numbers say were sent (sessions seen by this ledger)",
            labels,
            registry=r,
        )
        self.batches_received = Gauge(
            "plantmesh_completeness_batches_received",
            "Distinct batches received",
            labels,
            registry=r,
        )
        self.batches_missing = Gauge(
            "plantmesh_completeness_batches_missing",
            "Batches inside gaps",
            labels,
            registry=r,
        )
        self.duplicates = Gauge(
            "plantmesh_completeness_duplicates",
            "Batches received more than once",
            labels,
            registry=r,
        )
        self.open_gaps = Gauge(
            "plantmesh_completeness_open_gaps", "Gaps not closed yet", labels, registry=r
        )
        self._server: Any = None

    def rejected(self, reason: str) -> None:
        self.dlq.labels(self.role, reason).inc()

    def serve(self, settings: MetricsEndpoint) -> None:
        address = settings.address
        if address is None:
            return
        host, port = address
        self._server, _ = start_http_server(port, addr=host, registry=self.registry)
        log.info("metrics on http://%s:%d/metrics", host, self._server.server_port)

    @property
    def port(self) -> int | None:
        return None if self._server is None else int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.shutdown()
            server.server_close()
