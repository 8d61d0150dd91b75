"""InfluxDB down for two minutes while data keeps coming: the writer pauses, retries with capped
backoff, and stores everything once InfluxDB is back. Runs against a private InfluxDB (the
shared one must stay up), started and stopped through the stack API."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.config import IngestConfig
from ingest.writer import Writer
from plantmesh.config import validate_config
from plantmesh.contracts import encode
from plantmesh.stack import manager
from plantmesh.stack.paths import StackConfig
from tests.support.ingest import KEY, batch, points, produce, reading, writer_running
from tests.support.stack import private_server
from tests.support.waiting import async_wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = float(os.environ.get("PLANTMESH_TEST_OUTAGE_S", "120"))


@pytest.fixture
def private_influx(tmp_path: Path) -> Iterator[tuple[StackConfig, str]]:
    # Without authentication: this test is about the outage (the session's credentials are the
    # shared stack's); test_influx_security.py covers the secured server.
    with private_server(tmp_path, "influxdb", "PLANTMESH_INFLUX_URL", insecure=True) as server:
        yield server


@pytest.mark.timeout(OUTAGE_S + 240)
async def test_influxdb_down_for_two_minutes_loses_nothing(
    namespace: str, kafka_bootstrap: str, private_influx: tuple[StackConfig, str]
) -> None:
    stack, influx_url = private_influx
    config = validate_config(
        IngestConfig,
        {
            "namespace": namespace,
            "kafka": {"bootstrap": kafka_bootstrap, "client_id": namespace},
            "influxdb": {"url": influx_url, "bucket": f"{namespace}/autogen", "token": "u:p"},
            "writer": {"group_id": f"{namespace}-writer", "pause_after_s": 0.5},
            "backoff": {"initial_s": 0.1, "max_s": 5},
        },
    )
    raw = config.topics.telemetry_raw
    async with writer_running(Writer(config)) as writer:
        await produce(kafka_bootstrap, raw, [(KEY, encode(batch(reading("temp", 0.0), seq=0)), [])])

        async def first_stored() -> bool:
            return sum(writer.stats.committed.values()) == 1

        await async_wait_for(first_stored, 30, "the first batch before the outage")
        await asyncio.to_thread(manager.down, stack, ["influxdb"], lambda _: None)
        down_since = time.monotonic()
        during: list[tuple[bytes | None, bytes, list[Any]]] = [
            (KEY, encode(batch(reading("temp", float(i), offset_s=i), seq=i)), [])
            for i in range(1, 201)
        ]
        await produce(kafka_bootstrap, raw, during)

        async def outage_over() -> bool:
            # The outage lasts OUTAGE_S; meanwhile the writer must be paused and retrying.
            return time.monotonic() - down_since >= OUTAGE_S and writer.stats.pauses >= 1

        await async_wait_for(outage_over, OUTAGE_S + 60, "the outage to last", interval=1.0)
        assert sum(writer.stats.committed.values()) == 1  # nothing committed while down
        assert writer.stats.messages <= 1 + config.writer.max_poll_records  # memory stays flat
        await asyncio.to_thread(manager.up, stack, ["influxdb"], lambda _: None)

        async def caught_up() -> bool:
            return sum(writer.stats.committed.values()) == 201

        # Capped backoff: the next attempt comes within max_s of InfluxDB returning.
        await async_wait_for(caught_up, 60, "every batch after the outage")
        assert writer._consumer.paused() == set()
    rows = await points(influx_url, config.influxdb.database)
    assert sorted(row["value"] for row in rows) == [float(i) for i in range(201)]
