"""Ingest in tests: sample readings and batches of one machine, the bridge's config and its MQTT
side (publishing, forgetting a persistent session), Kafka producing, InfluxQL queries, and the
bridge and writer running in this event loop or as a process."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as mqtt
from aiokafka import AIOKafkaProducer
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.bridge import Bridge
from ingest.config import IngestConfig
from ingest.writer import Writer
from plantmesh.config import validate_config
from plantmesh.connections import KafkaConnection, MqttConnection
from plantmesh.contracts import AssetPath, Reading, ReadingBatch, encode
from plantmesh.influxql import auth_headers, env_token
from plantmesh.kafka.admin import ensure_topics
from plantmesh.mqtt_auth import apply_connection
from tests.support.kafka import kafka_options

ASSET = AssetPath(plant="p1", area="press", line="l2", machine="m7")
KEY = b"p1/m7"
"""The Kafka key of ASSET's batches (plant/machine)."""
# Recent but fixed: inside the default retention policy, and one shard for every test point.
T0 = datetime.now(UTC).replace(microsecond=123456) - timedelta(minutes=5)
BRIDGE_T0 = datetime(2026, 1, 1, tzinfo=UTC)
"""When the batches of `batch_payload` were taken (the bridge does not look at timestamps)."""


def reading(signal: str, value: float | bool | str, offset_s: float = 0, **extra: Any) -> Reading:
    """A reading of ASSET taken `offset_s` after T0."""
    ts = T0 + timedelta(seconds=offset_s)
    return Reading(asset=ASSET, signal=signal, value=value, source_ts=ts, gateway_ts=ts, **extra)


def batch(*readings: Reading, seq: int = 1) -> ReadingBatch:
    return ReadingBatch(
        gateway_id="gw-1", session_id="s1", seq=seq, sent_at=T0, readings=list(readings)
    )


def batch_payload(seq: int) -> bytes:
    """An encoded batch number `seq` of one reading of ASSET whose value is `seq`."""
    one = Reading(
        asset=ASSET, signal="temp", value=float(seq), source_ts=BRIDGE_T0, gateway_ts=BRIDGE_T0
    )
    return encode(
        ReadingBatch(gateway_id="gw-1", session_id="s1", seq=seq, sent_at=BRIDGE_T0, readings=[one])
    )


# --- the bridge ------------------------------------------------------------------------------
def bridge_config(
    namespace: str,
    mqtt_url: str | dict[str, str],
    kafka_bootstrap: str,
    client_id: str,
    **bridge: Any,
) -> IngestConfig:
    """A bridge with a persistent session `client_id` (forget it afterwards: forget_session).
    `mqtt_url`: a URL, or an `mqtt:` section (a private broker's own user)."""
    mqtt = {"url": mqtt_url} if isinstance(mqtt_url, str) else mqtt_url
    return validate_config(
        IngestConfig,
        {
            "namespace": namespace,
            "mqtt": {**mqtt, "client_id": client_id},
            "kafka": {"bootstrap": kafka_bootstrap, "client_id": client_id},
            "bridge": {"shared_group": client_id, "session_expiry_s": 600, **bridge},
            "backoff": {"initial_s": 0.05, "max_s": 0.2},
        },
    )


def mqtt_client(mqtt_url: str | MqttConnection, client_id: str = "") -> mqtt.Client:
    """A connected (not yet looping) MQTT v5 client: to a URL (the stack's operator when it is
    the local stack), or as a connection says (a private broker's own user)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    conn = mqtt_url if isinstance(mqtt_url, MqttConnection) else MqttConnection(url=mqtt_url)
    apply_connection(client, conn)
    client.connect(conn.host, conn.port)
    return client


def forget_session(mqtt_url: str | MqttConnection, client_id: str) -> None:
    """Connect with a clean start and no expiry: the broker drops the persistent session."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    conn = mqtt_url if isinstance(mqtt_url, MqttConnection) else MqttConnection(url=mqtt_url)
    apply_connection(client, conn)
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 0
    client.connect(conn.host, conn.port, clean_start=True, properties=properties)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


def _publish_blocking(
    mqtt_url: str | MqttConnection, messages: Sequence[tuple[str, bytes]]
) -> None:
    client = mqtt_client(mqtt_url)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


async def publish(mqtt_url: str | MqttConnection, messages: Sequence[tuple[str, bytes]]) -> None:
    """Publish (topic, payload) pairs with QoS 1, in order; return once the broker has them."""
    await asyncio.to_thread(_publish_blocking, mqtt_url, messages)


@asynccontextmanager
async def bridge_running(bridge: Bridge) -> AsyncIterator[Bridge]:
    """The bridge's run() as a task, ready when the block starts; stopped and awaited on exit."""
    task = asyncio.create_task(bridge.run(), name="test-bridge")
    try:
        await asyncio.wait_for(bridge.ready.wait(), 30)
        yield bridge
    finally:
        bridge.stop()
        await asyncio.wait_for(task, 30)


# --- the writer ------------------------------------------------------------------------------
async def produce(
    bootstrap: str, topic: str, messages: Sequence[tuple[bytes | None, bytes, list[Any]]]
) -> list[tuple[int, int]]:
    """Send (key, value, headers) in order; return (partition, offset) of each message. The
    topic is created first when missing (as the broker's auto-creation did: 4 partitions)."""
    await ensure_topics(KafkaConnection(bootstrap=bootstrap), [topic], 4, 1)
    producer = AIOKafkaProducer(**kafka_options(bootstrap), acks="all")
    await producer.start()
    placed = []
    try:
        for key, value, headers in messages:
            meta = await producer.send_and_wait(topic, value, key=key, headers=headers)
            placed.append((meta.partition, meta.offset))
    finally:
        await producer.stop()
    return placed


async def influxql(influx_url: str, query: str, db: str | None = None) -> dict[str, Any]:
    """The first result of an InfluxQL query (times in ns); fails on an error."""
    params = {"q": query, "epoch": "ns", **({"db": db} if db else {})}
    headers = auth_headers(env_token())  # the session's credentials (the stack's admin)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{influx_url}/query", data=params, headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        result: dict[str, Any] = (await response.json())["results"][0]
        assert "error" not in result, result
        return result


async def points(influx_url: str, db: str, where: str = "") -> list[dict[str, Any]]:
    """The rows of the `readings` measurement, as column -> value."""
    result = await influxql(influx_url, f"SELECT * FROM readings {where}", db)
    rows: list[dict[str, Any]] = []
    for series in result.get("series", []):
        rows += [dict(zip(series["columns"], values, strict=True)) for values in series["values"]]
    return rows


@asynccontextmanager
async def writer_running(writer: Writer) -> AsyncIterator[Writer]:
    """The writer's run() as a task, ready when the block starts; stopped and awaited on exit."""
    task = asyncio.create_task(writer.run(), name="test-writer")
    try:
        await asyncio.wait_for(writer.ready.wait(), 30)
        yield writer
    finally:
        writer.stop()
        await asyncio.wait_for(task, 30)


async def start_writer_process(config_file: Path, log_file: Path) -> asyncio.subprocess.Process:
    """`python -m ingest writer`, its log appended to `log_file`."""
    with log_file.open("a") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ingest",
            "writer",
            "--config",
            str(config_file),
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def pipeline_config(
    namespace: str,
    urls: tuple[str, str, str],
    client_id: str,
    writer: dict[str, Any] | None = None,
) -> IngestConfig:
    """Bridge and writer of one test run: `urls` are MQTT, Kafka bootstrap and InfluxDB; the
    bridge's persistent session is `client_id`; `writer` adds writer settings."""
    mqtt_url, kafka_bootstrap, influx_url = urls
    return validate_config(
        IngestConfig,
        {
            "namespace": namespace,
            "mqtt": {"url": mqtt_url, "client_id": client_id},
            "kafka": {"bootstrap": kafka_bootstrap, "client_id": namespace},
            "influxdb": {"url": influx_url, "bucket": f"{namespace}/autogen"},
            "bridge": {"shared_group": client_id, "session_expiry_s": 600},
            "writer": {"group_id": f"{namespace}-writer", **(writer or {})},
            "backoff": {"initial_s": 0.05, "max_s": 0.2},
        },
    )
