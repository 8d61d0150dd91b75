"""Bad input through the whole ingest path (MQTT -> bridge -> Kafka -> writer -> InfluxDB): each
bad message or reading lands in telemetry.dlq with its reason and source, the good data around it
arrives, and the registry's unit conversions reach InfluxDB and telemetry.normalized."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingest.bridge import Bridge
from ingest.config import IngestConfig
from ingest.writer import Writer
from plantmesh.config import validate_config
from plantmesh.contracts import AssetPath, ReadingBatch, decode
from plantmesh.topics import (
    HEADER_DLQ_READING_INDEX,
    HEADER_DLQ_REASON,
    HEADER_DLQ_SOURCE,
    HEADER_MACHINE_CLASS,
    HEADER_MQTT_TOPIC,
    HEADER_REGISTRY_VERSION,
    Topics,
)
from tests.support.ingest import (
    bridge_running,
    forget_session,
    influxql,
    points,
    publish,
    writer_running,
)
from tests.support.kafka import consume
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
PRESS = AssetPath(plant="p1", area="a", line="l", machine="press-1")
REGISTRY = """
version: "test-7"
classes:
  press: {signals: {temp: degC, pressure: bar, speed: null}}
plants:
  p1:
    machines: {press-1: press}
    tags:
      press: {TEMP_F: {signal: temp, unit: degF}, PRESS_PSI: {signal: pressure, unit: psi}}
"""


def reading(
    signal: str, value: Any, asset: AssetPath = PRESS, ts: datetime = NOW
) -> dict[str, Any]:
    stamp = ts.isoformat()
    return {
        "asset": asset.model_dump(),
        "signal": signal,
        "value": value,
        "source_ts": stamp,
        "gateway_ts": stamp,
    }


def payload(seq: int, *readings: dict[str, Any]) -> bytes:
    data = {
        "gateway_id": "gw-1",
        "session_id": "s1",
        "seq": seq,
        "sent_at": NOW.isoformat(),
        "readings": list(readings),
    }
    return json.dumps(data).encode()  # NaN and Infinity as Python's json writes them


@pytest.fixture
def client_id(namespace: str, mqtt_url: str) -> Iterator[str]:
    yield f"{namespace}-bridge"
    forget_session(mqtt_url, f"{namespace}-bridge")


@pytest.fixture
async def dropped(namespace: str, influx_url: str) -> AsyncIterator[None]:
    yield
    await influxql(influx_url, f'DROP DATABASE "{namespace}"')


@pytest.fixture
def config(
    namespace: str,
    mqtt_url: str,
    kafka_bootstrap: str,
    influx_url: str,
    client_id: str,
    tmp_path: Path,
    dropped: None,
) -> IngestConfig:
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY)
    return validate_config(
        IngestConfig,
        {
            "namespace": namespace,
            "mqtt": {"url": mqtt_url, "client_id": client_id},
            "kafka": {"bootstrap": kafka_bootstrap, "client_id": namespace},
            "influxdb": {"url": influx_url, "bucket": f"{namespace}/autogen"},
            "bridge": {
                "shared_group": client_id,
                "session_expiry_s": 600,
                "max_payload_bytes": 4096,
            },
            "writer": {
                "group_id": f"{namespace}-writer",
                "registry": str(registry),
                "validation": {"max_future_s": 3600, "max_past_s": 86400},
            },
            "backoff": {"initial_s": 0.05, "max_s": 0.2},
        },
    )


async def test_each_bad_item_lands_in_the_dlq_with_its_reason_and_good_data_flows(
    config: IngestConfig, mqtt_url: str, influx_url: str
) -> None:
    topics = Topics(config.namespace)
    press_topic = topics.mqtt_readings(PRESS)
    stranger = AssetPath(plant="p9", area="a", line="l", machine="x")
    ghost = PRESS.model_copy(update={"machine": "ghost"})
    messages: list[tuple[str, bytes, str | None]] = [
        (press_topic, payload(0, reading("temp", 20.0)), None),
        (press_topic, b'{"gateway_id": "gw-1", "readings": [', "malformed_json"),
        (press_topic, payload(1, reading("temp", [1, 2])), "schema_mismatch"),
        (press_topic, payload(2, reading("temp", math.nan)), "non_finite_value"),
        (press_topic, payload(3, reading("temp", math.inf)), "non_finite_value"),
        (
            topics.mqtt_readings(stranger),
            payload(4, reading("temp", 1.0, stranger)),
            "unknown_plant",
        ),
        (topics.mqtt_readings(ghost), payload(5, reading("temp", 1.0, ghost)), "unknown_machine"),
        (
            press_topic,
            payload(6, reading("temp", 1.0, ts=NOW + timedelta(days=2))),
            "timestamp_out_of_range",
        ),
        (
            press_topic,
            payload(7, reading("temp", 1.0, ts=NOW - timedelta(days=3))),
            "timestamp_out_of_range",
        ),
        (press_topic, payload(8, reading("temp", "x" * 5000)), "oversized"),
        (
            press_topic,
            payload(
                9,
                reading("TEMP_F", 212.0, ts=NOW + timedelta(seconds=1)),
                reading("temp", math.nan, ts=NOW + timedelta(seconds=2)),
                reading("PRESS_PSI", 145.0377377, ts=NOW + timedelta(seconds=3)),
            ),
            "non_finite_value",
        ),
        (press_topic, payload(10, reading("speed", 33.0, ts=NOW + timedelta(seconds=4))), None),
    ]
    expected_reasons = Counter(reason for _, _, reason in messages if reason)
    async with writer_running(Writer(config)) as writer, bridge_running(Bridge(config)) as bridge:
        await publish(mqtt_url, [(topic, body) for topic, body, _ in messages])

        async def all_handled() -> bool:
            committed = sum(writer.stats.committed.values())
            return bridge.stats.forwarded + bridge.stats.dlq == len(messages) and (
                committed == bridge.stats.forwarded
            )

        await async_wait_for(all_handled, 30, "every message to pass the bridge and the writer")
        assert bridge.stats.dlq_by_reason == {"oversized": 1}
        assert writer.stats.written_points == 4

    dlq = await consume(
        config.kafka.bootstrap, topics.telemetry_dlq, sum(expected_reasons.values())
    )
    got = Counter(dict(r.headers)[HEADER_DLQ_REASON].decode() for r in dlq)
    assert got == expected_reasons
    for record in dlq:
        headers = dict(record.headers)
        assert headers[HEADER_DLQ_SOURCE]  # mqtt:<topic> from the bridge, topic/partition/offset
        assert headers[HEADER_MQTT_TOPIC]
    [one_of_three] = [r for r in dlq if dict(r.headers).get(HEADER_DLQ_READING_INDEX) == b"1"]
    isolated = json.loads(one_of_three.value.replace(b"NaN", b"null"))
    assert (isolated["seq"], len(isolated["readings"])) == (9, 1)
    malformed = next(r for r in dlq if dict(r.headers)[HEADER_DLQ_REASON] == b"malformed_json")
    assert malformed.value == messages[1][1]  # the original bytes

    rows = await points(influx_url, config.influxdb.database)
    stored = sorted((row["signal"], row["unit"], round(row["value"], 6)) for row in rows)
    assert stored == [
        ("pressure", "bar", 10.0),  # 145.0377377 psi
        ("speed", None, 33.0),
        ("temp", "degC", 20.0),
        ("temp", "degC", 100.0),  # 212 degF
    ]
    normalized = await consume(config.kafka.bootstrap, topics.telemetry_normalized, 3)
    assert all(dict(r.headers)[HEADER_REGISTRY_VERSION] == b"test-7" for r in normalized)
    # The registry's machine class travels with each batch, for rules that target classes.
    assert all(dict(r.headers)[HEADER_MACHINE_CLASS] == b"press" for r in normalized)
    mixed = next(decode(ReadingBatch, r.value) for r in normalized if b'"seq":9' in r.value)
    assert [(r.signal, r.unit) for r in mixed.readings] == [("temp", "degC"), ("pressure", "bar")]
