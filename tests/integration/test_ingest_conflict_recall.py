"""A conflicting replay is refused whichever writer process stored the original: after a restart
of the writer, and on a partition that a rebalance handed to another writer (real Kafka and
InfluxDB). The new owner recalls the partition's committed tail into its duplicate window."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.config import IngestConfig
from ingest.writer import Writer
from plantmesh.topics import HEADER_DLQ_REASON, Topics
from tests.support.ingest import influxql, pipeline_config, points, produce, writer_running
from tests.support.kafka import consume
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

STAMP = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
MACHINES = [f"press-{i}" for i in range(8)]


def payload(machine: str, seq: int, value: float) -> bytes:
    reading = {
        "asset": {"plant": "p1", "area": "a", "line": "l", "machine": machine},
        "signal": "force",
        "value": value,
        "source_ts": STAMP,
        "gateway_ts": STAMP,
    }
    envelope = {"gateway_id": "gw-1", "session_id": "s1", "seq": seq, "sent_at": STAMP}
    return json.dumps(envelope | {"readings": [reading]}).encode()


def message(machine: str, seq: int, value: float) -> tuple[bytes, bytes, list[Any]]:
    return (f"p1/{machine}".encode(), payload(machine, seq, value), [])


@pytest.fixture
async def config(
    namespace: str, kafka_bootstrap: str, influx_url: str
) -> AsyncIterator[IngestConfig]:
    writer = {
        "validation": {"max_future_s": 3600, "max_past_s": 86400},
        "completeness": {"enabled": False},
    }
    urls = ("mqtt://127.0.0.1:1", kafka_bootstrap, influx_url)  # no bridge here
    yield pipeline_config(namespace, urls, f"{namespace}-bridge", writer)
    await influxql(influx_url, f'DROP DATABASE "{namespace}"')


async def _committed(writers: list[Writer], placed: list[tuple[int, int]]) -> None:
    """Until the writers together committed past every (partition, offset) of `placed`."""
    last: dict[int, int] = {}
    for partition, offset in placed:
        last[partition] = max(last.get(partition, -1), offset)

    async def done() -> bool:
        committed: dict[int, int] = {}
        for writer in writers:
            for (_, partition), offset in writer.stats.committed.items():
                committed[partition] = max(committed.get(partition, 0), offset)
        return all(committed.get(p, 0) > offset for p, offset in last.items())

    await async_wait_for(done, 60, "the writers to commit every message")


async def _stored(influx_url: str, config: IngestConfig) -> dict[str, float]:
    rows = await points(influx_url, config.influxdb.database)
    return {row["machine"]: row["value"] for row in rows}


async def _reasons(config: IngestConfig, count: int) -> Counter[str]:
    dlq = await consume(config.kafka.bootstrap, Topics(config.namespace).telemetry_dlq, count)
    return Counter(dict(r.headers)[HEADER_DLQ_REASON].decode() for r in dlq)


async def test_a_conflicting_replay_after_a_writer_restart_is_refused(
    config: IngestConfig, influx_url: str
) -> None:
    raw = Topics(config.namespace).telemetry_raw
    first = await produce(config.kafka.bootstrap, raw, [message("press-0", 20, 20.0)])
    async with writer_running(Writer(config)) as writer:
        await _committed([writer], first)
    assert await _stored(influx_url, config) == {"press-0": 20.0}

    replay = [message("press-0", 20, 99.0), message("press-1", 21, 21.0)]
    again = await produce(config.kafka.bootstrap, raw, replay)
    async with writer_running(Writer(config)) as restarted:
        await _committed([restarted], again)
        assert restarted.recall.recalled == 1, restarted.stats  # stored before the restart
    assert await _reasons(config, 1) == Counter({"conflicting_duplicate": 1})
    assert await _stored(influx_url, config) == {"press-0": 20.0, "press-1": 21.0}


async def test_a_conflicting_replay_on_a_partition_another_writer_took_is_refused(
    config: IngestConfig, influx_url: str
) -> None:
    raw = Topics(config.namespace).telemetry_raw
    originals = [message(machine, 1 + i, 1.0 + i) for i, machine in enumerate(MACHINES)]
    placed = await produce(config.kafka.bootstrap, raw, originals)
    assert len({partition for partition, _ in placed}) > 1, "the machines share one partition"
    async with writer_running(Writer(config)) as first:
        await _committed([first], placed)
        async with writer_running(Writer(config)) as second:

            async def split() -> bool:  # the rebalance gave the newcomer part of the partitions
                mine = second.recall.consumer.assignment()
                return bool(mine) and not (mine & first.recall.consumer.assignment())

            await async_wait_for(split, 60, "the group to share the partitions")
            conflicts = [message(m, 1 + i, 50.0 + i) for i, m in enumerate(MACHINES)]
            replayed = await produce(config.kafka.bootstrap, raw, conflicts)
            await _committed([first, second], replayed)
            assert second.recall.recalled >= 1
    assert await _reasons(config, len(MACHINES)) == Counter(
        {"conflicting_duplicate": len(MACHINES)}
    )
    stored = await _stored(influx_url, config)
    assert stored == {m: 1.0 + i for i, m in enumerate(MACHINES)}
