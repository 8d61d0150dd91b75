"""What the ingest benchmarks share: the servers they use, a gateway's batches, Kafka and
InfluxDB helpers, and CPU accounting of this process and of the local stack's servers."""

from __future__ import annotations

import asyncio
import http.client
import os
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from cpu_meter import local_server_pids

from plantmesh.connections import (
    DEFAULT_INFLUX_URL,
    DEFAULT_KAFKA_BOOTSTRAP,
    DEFAULT_MQTT_URL,
    InfluxConnection,
    KafkaConnection,
)
from plantmesh.contracts import AssetPath, Reading, ReadingBatch, encode
from plantmesh.influxql import auth_headers
from plantmesh.kafka.security import kafka_client_options

MQTT_URL = os.environ.get("PLANTMESH_MQTT_URL") or DEFAULT_MQTT_URL
KAFKA = os.environ.get("PLANTMESH_KAFKA_BOOTSTRAP") or DEFAULT_KAFKA_BOOTSTRAP
INFLUX = os.environ.get("PLANTMESH_INFLUX_URL") or DEFAULT_INFLUX_URL
REGISTRY = Path(__file__).resolve().parents[1] / "deploy" / "ingest" / "registry.yaml"
# Signals with the units plant-a's gateways send (the registry's canonical ones).
SIGNALS = {
    "bearing_temp": "degC",
    "vibration_rms": "mm/s",
    "pressure": "bar",
    "motor_current": "A",
    "running": None,
}
REGISTERED = ("press-01", "press-02", "comp-01")


def make_batches(
    count: int, per_batch: int, start: datetime, machines: tuple[str, ...] = REGISTERED
) -> list[ReadingBatch]:
    """One gateway session of plant-a; by default its registered machines (so the registry
    passes them)."""
    batches = []
    for seq in range(count):
        machine = machines[seq % len(machines)]
        asset = AssetPath(plant="plant-a", area="stamping", line="line1", machine=machine)
        readings = []
        names = list(SIGNALS)
        for i in range(per_batch):
            ts = start + timedelta(milliseconds=seq * per_batch + i)
            signal = names[i % len(names)]
            readings.append(
                Reading(
                    asset=asset,
                    signal=signal,
                    value=20.0 + (seq * 7 + i) % 50 / 3,
                    unit=SIGNALS[signal],
                    source_ts=ts,
                    gateway_ts=ts,
                )
            )
        batches.append(
            ReadingBatch(
                gateway_id="gw-bench", session_id="s1", seq=seq, sent_at=start, readings=readings
            )
        )
    return batches


async def until(
    done: Callable[[], bool], service: asyncio.Task[None], interval: float = 0.005
) -> None:
    """Poll a counter of the service under test (the clock only starts once it moves)."""
    while True:
        if done():
            return
        if service.done():
            service.result()  # its exception, if it failed
            raise RuntimeError(f"{service.get_name()} ended before the run was complete")
        await asyncio.sleep(interval)


# --- CPU --------------------------------------------------------------------------------------
def local_servers() -> dict[str, int]:
    """Pids of the local stack's servers that this run uses (none when it uses others)."""
    return local_server_pids({MQTT_URL, KAFKA, INFLUX})


def kafka_options() -> dict[str, Any]:
    """Our own Kafka clients: the environment's credentials (`plantmesh stack env`)."""
    return kafka_client_options(KafkaConnection(bootstrap=KAFKA))


# --- InfluxDB ---------------------------------------------------------------------------------
def influx_auth() -> dict[str, str]:
    """The environment's credentials, as a header (never URL parameters, which get logged)."""
    return auth_headers(InfluxConnection(url=INFLUX).token_value())


def influx_call(path: str, params: dict[str, str], body: bytes = b"") -> int:
    url = urllib.parse.urlsplit(INFLUX)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 8086, timeout=60)
    try:
        conn.request(
            "POST", f"{path}?{urllib.parse.urlencode(params)}", body=body, headers=influx_auth()
        )
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


async def fill_raw(topic: str, batches: list[ReadingBatch]) -> None:
    producer = AIOKafkaProducer(
        **kafka_options(), linger_ms=20, max_batch_size=1 << 20, max_request_size=4 << 20
    )
    await producer.start()
    try:
        futures = []
        for batch in batches:
            asset = batch.readings[0].asset
            key = f"{asset.plant}/{asset.machine}".encode()
            futures.append(await producer.send(topic, encode(batch), key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def delete_topics(namespace: str) -> None:
    """The run's Kafka topics: a broker left with thousands of partitions slows down."""
    admin = AIOKafkaAdminClient(**kafka_options())
    await admin.start()
    try:
        await admin.delete_topics([t for t in await admin.list_topics() if t.startswith(namespace)])
    finally:
        await admin.close()
