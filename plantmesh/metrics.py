"""A Prometheus endpoint that reads a service's own counters at each scrape.

Nothing is counted twice: a service keeps its counters in plain stats objects, and at each
scrape a collector asks the service's event loop for a snapshot of them and turns it into metric
families. A scrape that cannot get the snapshot within a few seconds fails, which is itself a
sign the event loop is stuck. Only the edge agent and ingest import this module: it imports
prometheus-client, which the alerting install does not have.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

log = logging.getLogger(__name__)

SNAPSHOT_TIMEOUT_S = 5.0

Families = Callable[[], Iterable[Metric]]
"""Makes the metric families from the service's counters; runs on the service's event loop."""


def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class LoopCollector(Collector):
    """Calls `families` on `loop` (where the counters live and change) at each scrape."""

    def __init__(self, families: Families, loop: asyncio.AbstractEventLoop) -> None:
        self.families = families
        self.loop = loop

    def collect(self) -> Iterator[Metric]:
        future: concurrent.futures.Future[list[Metric]] = concurrent.futures.Future()

        def take() -> None:
            try:
                future.set_result(list(self.families()))
            except Exception as exc:  # reported to the scraper, never to the loop
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(take)
        yield from future.result(timeout=SNAPSHOT_TIMEOUT_S)


class MetricsServer:
    """The HTTP endpoint, in prometheus-client's own thread; `close()` when the service stops."""

    def __init__(
        self, families: Families, address: tuple[str, int], loop: asyncio.AbstractEventLoop
    ) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(LoopCollector(families, loop))
        host, port = address
        self._server, self._thread = start_http_server(port, host, registry=registry)
        self.port: int = self._server.server_port
        log.info("metrics on http://%s:%d/metrics", host, self.port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
