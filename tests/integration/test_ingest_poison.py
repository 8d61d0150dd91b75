"""The attacker's barrage of issue 13 through the real path (MQTT -> bridge -> Kafka -> writer ->
InfluxDB): contract-valid extremes are stored exactly, everything else is dead-lettered with the
right reason, a replay with other content never overwrites, retained batches are not forwarded
again by a restarted bridge, and nothing stops the services or stalls a partition."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.bridge import Bridge
from ingest.config import IngestConfig
from ingest.writer import Writer
from plantmesh.contracts import SEQ_MAX, AssetPath
from plantmesh.topics import HEADER_DLQ_REASON, Topics
from tests.support.ingest import (
    bridge_running,
    forget_session,
    influxql,
    mqtt_client,
    pipeline_config,
    points,
    publish,
    writer_running,
)
from tests.support.kafka import consume
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
STAMP = NOW.isoformat().replace("+00:00", "Z")
PRESS = AssetPath(plant="p1", area="a", line="l", machine="press-1")


def reading(signal: str, value: Any = 1.0, **changes: Any) -> dict[str, Any]:
    base = {"asset": PRESS.model_dump(), "signal": signal, "value": value}
    return base | {"source_ts": STAMP, "gateway_ts": STAMP} | changes


def payload(seq: Any, *readings: dict[str, Any], **changes: Any) -> bytes:
    envelope = {"gateway_id": "gw-1", "session_id": "s1", "seq": seq, "sent_at": STAMP}
    return json.dumps(envelope | changes | {"readings": list(readings)}).encode()


@pytest.fixture
def client_id(namespace: str, mqtt_url: str) -> Iterator[str]:
    yield f"{namespace}-bridge"
    forget_session(mqtt_url, f"{namespace}-bridge")


@pytest.fixture
async def config(
    namespace: str,
    mqtt_url: str,
    kafka_bootstrap: str,
    influx_url: str,
    client_id: str,
) -> AsyncIterator[IngestConfig]:
    writer = {
        "validation": {"max_future_s": 3600, "max_past_s": 86400},
        "completeness": {"flush_interval_s": 0.2},
    }
    yield pipeline_config(namespace, (mqtt_url, kafka_bootstrap, influx_url), client_id, writer)
    await influxql(influx_url, f'DROP DATABASE "{namespace}"')


async def _all_handled(bridge: Bridge, writer: Writer, count: int) -> None:
    async def handled() -> bool:
        committed = sum(writer.stats.committed.values())
        passed = bridge.stats.forwarded + bridge.stats.dlq
        return passed == count and committed == bridge.stats.forwarded

    await async_wait_for(handled, 60, "every message through the bridge and the writer")


async def test_the_barrage_is_stored_exactly_or_dead_lettered_with_its_reason(
    config: IngestConfig, mqtt_url: str, influx_url: str
) -> None:
    topics = Topics(config.namespace)
    press = topics.mqtt_readings(PRESS)
    status = topics.mqtt_gateway_status("p1", "gw-1")
    nine_digits = STAMP.replace("Z", ".123456789Z")
    messages: list[tuple[str, bytes, str | None]] = [
        (press, payload(SEQ_MAX, reading("at_max", 1.0)), None),
        (press, payload(2**63 - 1, reading("beyond", 2.0)), "schema_mismatch"),
        (press, payload(2**64, reading("beyond", 3.0)), "schema_mismatch"),
        (press, payload("5000", reading("lenient", 4.0)), "schema_mismatch"),
        (press, payload(7.0, reading("lenient", 5.0)), "schema_mismatch"),
        (press, payload(10, reading("lenient", 6.0, status_code="0")), "schema_mismatch"),
        (press, payload(11, reading("lenient", 7.0, source_ts=1767225600)), "schema_mismatch"),
        (press, payload(12, reading("lenient", 8.0, source_ts=nine_digits)), "schema_mismatch"),
        (press, payload(13, reading("units", 9.0, unit="\x00")), "unknown_unit"),
        (press, payload(14, reading("units", 10.0, unit="\U0001f525")), "unknown_unit"),
        (press, payload(15, reading("units", 11.0, unit="u" * 10_000)), "unknown_unit"),
        (press, payload(16, reading("units", 12.0, unit="u" * 60_000)), "unknown_unit"),
        (press, payload(17, reading("units", 13.0, unit="bar")), None),
        (press, payload(20, reading("replayed", 20.0)), None),
        (press, payload(20, reading("replayed", 20.0)), None),  # at-least-once: the same
        (press, payload(20, reading("replayed", 99.0)), "conflicting_duplicate"),
        (status, b'{"state": "birth"}', "schema_mismatch"),
        (status, b"\xff not json", "malformed_json"),
    ]
    expected = Counter(reason for _, _, reason in messages if reason)
    async with writer_running(Writer(config)) as writer, bridge_running(Bridge(config)) as bridge:
        await publish(mqtt_url, [(topic, body) for topic, body, _ in messages])
        await _all_handled(bridge, writer, len(messages))
        assert writer.ledger is not None

        async def conflict_counted() -> bool:
            assert writer.ledger is not None
            return sum(g.figures().conflicts for g in writer.ledger.gateways.values()) == 1

        await async_wait_for(conflict_counted, 30, "the ledger to count the conflict")

    dlq = await consume(config.kafka.bootstrap, topics.telemetry_dlq, expected.total())
    assert Counter(dict(r.headers)[HEADER_DLQ_REASON].decode() for r in dlq) == expected
    rows = await points(influx_url, config.influxdb.database)
    stored = sorted((row["signal"], row["unit"], row["value"]) for row in rows)
    assert stored == [("at_max", None, 1.0), ("replayed", None, 20.0), ("units", "bar", 13.0)]
    series = await influxql(influx_url, "SHOW SERIES FROM readings", config.influxdb.database)
    assert len(series["series"][0]["values"]) == 3  # no series of refused units


def _publish_retained(mqtt_url: str, topic: str, body: bytes) -> None:
    client = mqtt_client(mqtt_url)
    client.loop_start()
    try:
        client.publish(topic, body, qos=1, retain=True).wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


async def test_a_retained_batch_is_not_forwarded_again_after_a_bridge_restart(
    config: IngestConfig, mqtt_url: str, influx_url: str
) -> None:
    topics = Topics(config.namespace)
    press = topics.mqtt_readings(PRESS)
    try:
        async with bridge_running(Bridge(config)) as bridge:
            await asyncio.to_thread(_publish_retained, mqtt_url, press, payload(1, reading("r")))

            async def forwarded() -> bool:
                return bridge.stats.forwarded == 1

            await async_wait_for(forwarded, 30, "the live publish to be forwarded")
        for _ in range(2):  # each restart subscribes again: the broker sends the retained copy
            async with bridge_running(Bridge(config)) as again:
                await publish(mqtt_url, [(press, payload(2, reading("live")))])

                async def settled() -> bool:
                    return (again.stats.forwarded, again.stats.retained_skipped) == (1, 1)

                await async_wait_for(settled, 30, "the live batch to be forwarded")
    finally:
        await asyncio.to_thread(_publish_retained, mqtt_url, press, b"")  # clear it
    raw = await consume(config.kafka.bootstrap, topics.telemetry_raw, 3)
    assert sorted(b'"signal": "r"' in r.value for r in raw) == [False, False, True]
