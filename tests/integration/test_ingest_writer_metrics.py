"""A running writer's metrics endpoint: its stats and its ledger's figures, scraped over HTTP."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ingest.config import IngestConfig
from ingest.writer import Writer
from plantmesh.config import validate_config
from plantmesh.contracts import AssetPath, Reading, ReadingBatch, encode
from tests.support.ingest import influxql, produce, writer_running
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

Values = dict[tuple[str, tuple[tuple[str, str], ...]], float]
ASSET = AssetPath(plant="p1", area="a", line="l", machine="m1")
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
GATEWAY = (("gateway", "gw-1"), ("plant", "p1"))


def config(namespace: str, kafka: str, influx_url: str, listen: str) -> IngestConfig:
    return validate_config(
        IngestConfig,
        {
            "namespace": namespace,
            "kafka": {"bootstrap": kafka, "client_id": namespace},
            "influxdb": {"url": influx_url, "bucket": f"{namespace}/autogen"},
            "writer": {
                "group_id": f"{namespace}-writer",
                "completeness": {"flush_interval_s": 0.2},
                "metrics": {"listen": listen},
            },
            "backoff": {"initial_s": 0.05, "max_s": 0.2},
        },
    )


@pytest.fixture
async def database(namespace: str, influx_url: str) -> AsyncIterator[None]:
    yield
    await influxql(influx_url, f'DROP DATABASE "{namespace}"')


def batch(seq: int) -> bytes:
    ts = T0 + timedelta(seconds=seq)
    reading = Reading(asset=ASSET, signal="temp", value=1.0, source_ts=ts, gateway_ts=ts)
    return encode(
        ReadingBatch(gateway_id="gw-1", session_id="s1", seq=seq, sent_at=ts, readings=[reading])
    )


def scrape(port: int) -> Values:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.usefixtures("database")
async def test_the_endpoint_serves_the_writers_counts_and_its_ledgers_figures(
    namespace: str, kafka_bootstrap: str, influx_url: str
) -> None:
    settings = config(namespace, kafka_bootstrap, influx_url, "127.0.0.1:0")
    async with writer_running(Writer(settings)) as writer:
        assert writer.metrics_server is not None
        port = writer.metrics_server.port
        messages: list[tuple[bytes | None, bytes, list[Any]]] = [
            (b"p1/m1", batch(seq), []) for seq in (0, 1, 3)
        ]
        await produce(kafka_bootstrap, settings.topics.telemetry_raw, messages)

        async def counted() -> bool:
            got = await asyncio.to_thread(scrape, port)
            return got.get(("plantmesh_completeness_batches_expected", GATEWAY)) == 4

        await async_wait_for(counted, 30, "the ledger's figures in a scrape")
        got = await asyncio.to_thread(scrape, port)
        assert got[("plantmesh_ingest_messages_total", (("role", "writer"),))] == 3
        assert got[("plantmesh_completeness_batches_missing", GATEWAY)] == 1
        assert got[("plantmesh_ingest_paused", ())] == 0
    with socket.socket() as probe:  # the endpoint closed with the writer
        assert probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.usefixtures("database")
async def test_a_taken_metrics_port_does_not_stop_the_writer(
    namespace: str, kafka_bootstrap: str, influx_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = config(namespace, kafka_bootstrap, influx_url, f"127.0.0.1:{port}")
        async with writer_running(Writer(settings)) as writer:
            assert writer.metrics_server is None
            assert "metrics endpoint" in caplog.text
