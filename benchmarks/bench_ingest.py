"""Ingest throughput, each figure next to its reference measured in the same run.

    .venv/bin/python benchmarks/bench_ingest.py [--quick] [--profile writer.txt]

1. writer: readings/s from Kafka telemetry.raw into InfluxDB (one writer process, registry and
   completeness ledger on, as deployed), against the raw InfluxDB write ceiling: prebuilt line
   protocol of the same schema, 5,000-point requests, two concurrent writers.
2. bridge: MQTT batches/s into Kafka, against a raw paho QoS 1 subscriber draining the same
   number of queued messages from the same broker.

Every phase also reports the CPU time it cost: this process (the service under test, or the
reference client) and, when the servers are the local stack's, InfluxDB, Kafka and Mosquitto.
From those the writer's best possible rate on this machine follows (every core busy, the writer's
own share on one core): the servers and the writer share the same cores here, which bounds the
ratio to a ceiling that InfluxDB reaches alone.

Servers: PLANTMESH_MQTT_URL, PLANTMESH_KAFKA_BOOTSTRAP, PLANTMESH_INFLUX_URL (the local stack's
defaults otherwise); InfluxDB credentials from PLANTMESH_INFLUX_TOKEN_FILE (the stack's admin
after `eval "$(plantmesh stack env)"`: the run creates and drops databases). Everything the run creates is namespaced and the InfluxDB databases are
dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import http.client
import os
import pstats
import sys
import threading
import time
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from cpu_meter import CpuMeter
from ingest_workload import (
    INFLUX,
    KAFKA,
    MQTT_URL,
    REGISTRY,
    delete_topics,
    fill_raw,
    influx_auth,
    influx_call,
    local_servers,
    make_batches,
    until,
)
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.bridge import Bridge
from ingest.config import IngestConfig
from ingest.line_protocol import batch_to_lines
from ingest.writer import Writer
from plantmesh.config import validate_config
from plantmesh.connections import (
    MqttConnection,
)
from plantmesh.contracts import ReadingBatch, encode
from plantmesh.kafka.admin import ensure_topics
from plantmesh.mqtt_auth import apply_connection
from plantmesh.topics import Topics


def ceiling(
    lines: list[str], db: str, meter: CpuMeter, writers: int = 2, chunk: int = 5000
) -> float:
    """Points/s of `writers` threads posting prebuilt line protocol, keep-alive, 5,000 a request."""
    influx_call("/query", {"q": f'CREATE DATABASE "{db}"'})
    bodies = ["\n".join(lines[i : i + chunk]).encode() for i in range(0, len(lines), chunk)]
    url = urllib.parse.urlsplit(INFLUX)
    errors: list[str] = []
    headers = influx_auth()

    def post(mine: list[bytes]) -> None:
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 8086, timeout=60)
        for body in mine:
            conn.request("POST", f"/write?db={db}&precision=ns", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 204:
                errors.append(str(response.status))
        conn.close()

    threads = [threading.Thread(target=post, args=(bodies[i::writers],)) for i in range(writers)]
    meter.start()
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    meter.stop()
    if errors:
        raise RuntimeError(f"ceiling writes failed: {errors[:3]}")
    return len(lines) / elapsed


async def bench_writer(
    batches: list[ReadingBatch], namespace: str, profile: Path | None, meter: CpuMeter
) -> float:
    config = validate_config(
        IngestConfig,
        {
            "namespace": namespace,
            "kafka": {"bootstrap": KAFKA, "client_id": namespace},
            "influxdb": {"url": INFLUX, "bucket": f"{namespace}/autogen"},
            "writer": {"group_id": f"{namespace}-writer", "registry": str(REGISTRY)},
        },
    )
    # Auto-creation is off on a secured broker: the raw topic with the writer's own layout.
    topics = config.kafka_topics
    raw = config.topics.telemetry_raw
    await ensure_topics(config.kafka, [raw], topics.partitions, topics.replication_factor)
    await fill_raw(raw, batches)
    total = sum(len(b.readings) for b in batches)
    writer = Writer(config)
    task = asyncio.create_task(writer.run(), name="bench-writer")
    await asyncio.wait_for(writer.ready.wait(), 60)
    profiler: Any = None
    await until(lambda: writer.stats.messages > 0, task, 0.001)
    meter.start()
    started = time.perf_counter()
    if profile is not None:
        profiler = cProfile.Profile()
        profiler.enable()
    await until(lambda: writer.stats.written_points + writer.stats.dlq >= total, task)
    elapsed = time.perf_counter() - started
    meter.stop()
    if profiler is not None and profile is not None:
        profiler.disable()
        with profile.open("w") as out:
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(40)
    writer.stop()
    await task
    if writer.stats.dlq:
        raise RuntimeError(f"unexpected DLQ entries: {writer.stats.dlq_by_reason}")
    # The first poll was already under way when the clock started: count from the second.
    return total / elapsed


# --- MQTT -------------------------------------------------------------------------------------
def _connect(client_id: str, clean: bool) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.max_inflight_messages_set(1000)
    conn = MqttConnection(url=MQTT_URL)  # TLS and the stack's operator on a secured stack
    apply_connection(client, conn)
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 0 if clean else 600
    client.connect(conn.host, conn.port, clean_start=clean, properties=properties)
    return client


def publish(topics: list[str], payload: bytes, count: int) -> None:
    client = _connect("", True)
    client.loop_start()
    infos = [client.publish(topics[i % len(topics)], payload, qos=1) for i in range(count)]
    for info in infos:
        info.wait_for_publish(timeout=60)
    client.disconnect()
    client.loop_stop()


def raw_paho(
    topic_filter: str,
    topics: list[str],
    payload: bytes,
    count: int,
    namespace: str,
    meter: CpuMeter,
) -> float:
    """A plain paho QoS 1 subscriber draining `count` messages queued in its session."""
    client_id = f"{namespace}-raw"
    shared = f"$share/{client_id}/{topic_filter}"
    setup = _connect(client_id, False)
    subscribed = threading.Event()
    setup.on_subscribe = lambda *_: subscribed.set()
    setup.loop_start()
    setup.subscribe(shared, qos=1)
    if not subscribed.wait(30):
        raise RuntimeError("no SUBACK from the broker")
    setup.disconnect()
    setup.loop_stop()
    publish(topics, payload, count)
    received = 0
    done = threading.Event()
    first: list[float] = []

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        nonlocal received
        if not first:
            first.append(time.perf_counter())
        received += 1
        if received == count:
            done.set()

    client = _connect(client_id, False)
    client.on_message = on_message
    meter.start()
    client.loop_start()
    done.wait(300)
    elapsed = time.perf_counter() - first[0]
    meter.stop()
    client.disconnect()
    client.loop_stop()
    _connect(client_id, True).disconnect()  # drop the session
    return count / elapsed


async def bench_bridge(
    topics: list[str], payload: bytes, count: int, namespace: str, meter: CpuMeter
) -> float:
    client_id = f"{namespace}-bridge"
    config = validate_config(
        IngestConfig,
        {
            "namespace": namespace,
            "mqtt": {"url": MQTT_URL, "client_id": client_id},
            "kafka": {"bootstrap": KAFKA, "client_id": namespace},
            "bridge": {"shared_group": client_id, "session_expiry_s": 600},
        },
    )
    first = Bridge(config)  # creates the persistent session and its subscriptions
    task = asyncio.create_task(first.run(), name="bench-bridge-setup")
    await asyncio.wait_for(first.ready.wait(), 60)
    first.stop()
    await task
    await asyncio.to_thread(publish, topics, payload, count)
    bridge = Bridge(config)
    task = asyncio.create_task(bridge.run(), name="bench-bridge")
    await until(lambda: bridge.stats.received > 0, task, 0.001)
    meter.start()
    started = time.perf_counter()
    await until(lambda: bridge.stats.forwarded >= count, task)
    elapsed = time.perf_counter() - started
    meter.stop()
    bridge.stop()
    await task
    await asyncio.to_thread(lambda: _connect(client_id, True).disconnect())
    return count / elapsed


# --- the run ----------------------------------------------------------------------------------
def row(name: str, ours: float, reference: float, target: float, unit: str) -> str:
    ratio = ours / reference if reference else float("nan")
    verdict = "ok" if ratio >= target else "below"
    return f"{name:<8} {ours:>12,.0f} {reference:>14,.0f}  {unit:<11} {ratio:>5.2f} (target {target}) {verdict}"


def writer_bound(readings: int, meter: CpuMeter, ceiling_rate: float) -> list[str]:
    """What the writer run's CPU costs allow on this machine, at best."""
    used = meter.used
    if not meter.pids or not used.get("this process"):
        return ["(servers not local: no CPU accounting)"]
    cores = os.cpu_count() or 1
    per_reading = {name: seconds / readings * 1e6 for name, seconds in used.items()}
    costs = ", ".join(f"{name} {us:.2f}" for name, us in per_reading.items())
    best = min(cores * readings / sum(used.values()), readings / used["this process"])
    return [
        f"writer run, CPU µs per reading: {costs}",
        f"with {cores} cores shared by all of them the writer can reach at most {best:,.0f} "
        f"readings/s here: ratio <= {best / ceiling_rate:.2f}",
    ]


async def main(args: argparse.Namespace) -> None:
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    try:
        await run(args, namespace)
    finally:
        await delete_topics(namespace)


async def run(args: argparse.Namespace, namespace: str) -> None:
    batches_n, per_batch, mqtt_n = (300, 100, 3000) if args.quick else (4000, 100, 20000)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    batches = make_batches(batches_n, per_batch, start)
    lines = [line for batch in batches for line in batch_to_lines(batch)]
    print(f"readings: {len(lines):,} in {batches_n:,} batches; MQTT messages: {mqtt_n:,}")
    results: list[str] = []
    meters = {name: CpuMeter(local_servers()) for name in ("ceiling", "writer", "paho", "bridge")}
    ceiling_db = f"{namespace}c"
    try:
        raw_ceiling = await asyncio.to_thread(ceiling, lines, ceiling_db, meters["ceiling"])
        writer_rate = await bench_writer(batches, namespace, args.profile, meters["writer"])
        results.append(row("writer", writer_rate, raw_ceiling, 0.7, "readings/s"))
        results.append(
            f"{'':<8} {'(target >= 100,000 readings/s: ' + ('ok' if writer_rate >= 100_000 else 'below') + ')'}"
        )
    finally:
        for db in (ceiling_db, namespace):
            influx_call("/query", {"q": f'DROP DATABASE "{db}"'})
    topics = Topics(namespace)
    sample = batches[0].model_copy(update={"readings": batches[0].readings[:10]})
    payload = encode(sample)
    # A plant's machines: their batches spread over the partitions (key plant/machine).
    asset = sample.readings[0].asset
    machine_topics = [
        topics.mqtt_readings(asset.model_copy(update={"machine": f"m{i}"})) for i in range(12)
    ]
    paho_rate = await asyncio.to_thread(
        raw_paho,
        topics.mqtt_readings_filter,
        machine_topics,
        payload,
        mqtt_n,
        namespace,
        meters["paho"],
    )
    bridge_rate = await bench_bridge(machine_topics, payload, mqtt_n, namespace, meters["bridge"])
    results.append(row("bridge", bridge_rate, paho_rate, 0.7, "batches/s"))
    print(f"\n{'':<8} {'ours':>12} {'reference':>14}  {'unit':<11} ratio")
    print("\n".join(results))
    print(
        "references: writer = raw InfluxDB /write, prebuilt lines, 2 writers; bridge = raw paho QoS 1"
    )
    print("\nCPU time of each phase:")
    for name, meter in meters.items():
        print(meter.line(name))
    print("\n".join(writer_bound(len(lines), meters["writer"], raw_ceiling)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    parser.add_argument(
        "--profile", type=Path, help="write a cProfile summary of the writer to this file"
    )
    asyncio.run(main(parser.parse_args()))
