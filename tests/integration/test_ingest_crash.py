"""kill -9 the writer process mid-stream, start it again: InfluxDB ends with every reading
exactly once."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from plantmesh.contracts import AssetPath, Reading, ReadingBatch, encode
from tests.support.ingest import influxql, produce, start_writer_process
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

BATCHES = 300
PER_BATCH = 20
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def batch(seq: int) -> tuple[bytes, bytes, list[Any]]:
    machine = f"m{seq % 3}"
    asset = AssetPath(plant="p1", area="a", line="l", machine=machine)
    ts = T0 + timedelta(seconds=seq)
    readings = [
        Reading(
            asset=asset, signal=f"s{i}", value=float(seq * 100 + i), source_ts=ts, gateway_ts=ts
        )
        for i in range(PER_BATCH)
    ]
    body = ReadingBatch(gateway_id="gw-1", session_id="s1", seq=seq, sent_at=ts, readings=readings)
    return f"p1/{machine}".encode(), encode(body), []


async def count(influx_url: str, db: str) -> int:
    result = await influxql(influx_url, "SELECT COUNT(value) FROM readings", db)
    series = result.get("series")
    return int(series[0]["values"][0][1]) if series else 0


async def test_kill_9_mid_stream_then_restart_stores_every_reading_exactly_once(
    namespace: str, kafka_bootstrap: str, influx_url: str, tmp_path: Path
) -> None:
    db = namespace
    raw = f"{namespace}.telemetry.raw"
    config_file = tmp_path / "ingest.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "namespace": namespace,
                "kafka": {"bootstrap": kafka_bootstrap, "client_id": namespace},
                "influxdb": {"url": influx_url, "bucket": f"{db}/autogen"},
                # Small polls: many commits, so the kill lands between write and commit.
                "writer": {"group_id": f"{namespace}-writer", "max_poll_records": 3},
                "backoff": {"initial_s": 0.05, "max_s": 0.5},
            }
        )
    )
    log_file = tmp_path / "writer.log"
    processes: list[asyncio.subprocess.Process] = []
    total = BATCHES * PER_BATCH
    try:
        processes.append(await start_writer_process(config_file, log_file))
        first_half = [batch(seq) for seq in range(BATCHES // 2)]
        await produce(kafka_bootstrap, raw, first_half)

        async def some_stored() -> bool:
            return (
                await count(influx_url, db) > 0
                if "writer starting" in log_file.read_text()
                else False
            )

        await async_wait_for(some_stored, 60, "the first points in InfluxDB")
        processes[0].send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(processes[0].wait(), 30) == -signal.SIGKILL
        stored_at_kill = await count(influx_url, db)
        assert 0 < stored_at_kill < total

        await produce(kafka_bootstrap, raw, [batch(seq) for seq in range(BATCHES // 2, BATCHES)])
        processes.append(await start_writer_process(config_file, log_file))

        async def all_stored() -> bool:
            return await count(influx_url, db) >= total

        await async_wait_for(all_stored, 120, f"{total} points in InfluxDB")
        processes[1].send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(processes[1].wait(), 30) == 0, log_file.read_text()[-2000:]

        assert await count(influx_url, db) == total
        per_series = await influxql(
            influx_url, "SELECT COUNT(value) FROM readings GROUP BY machine, signal", db
        )
        counts = {s["values"][0][1] for s in per_series["series"]}
        assert len(per_series["series"]) == 3 * PER_BATCH
        assert counts == {BATCHES // 3}  # every series holds each of its timestamps once
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
        await influxql(influx_url, f'DROP DATABASE "{db}"')
