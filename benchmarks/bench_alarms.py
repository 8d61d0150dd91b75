"""Alarm records and notification latency, each figure printed next to its target.

    .venv/bin/python benchmarks/bench_alarms.py [--quick] [--skip-latency]

1. transitions recorded per second by one process, on PostgreSQL ($PLANTMESH_DATABASE_URL,
   the local stack's) and on SQLite (a temporary file): RAISED events of distinct machines
   through AlarmStore.record with an escalation policy (so each also writes its level-1
   delivery, its escalation timer and its outbox row), then their CLEARED.
2. latency: the alarm service in this process on the local Kafka and PostgreSQL, 100 new alerts
   per second for 30 s produced to alerts.events; each one's latency is from the producer's
   send to its level-1 webhook arriving at an HTTP receiver in this process. Target: p99 shown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from aiokafka import AIOKafkaProducer

from alerting.alarm_service.config import load_alarm_config
from alerting.alarm_service.service import AlarmService
from alerting.lifecycle.policies import EscalationConfig
from alerting.records.database import open_database
from alerting.records.migrate import upgrade
from alerting.records.store import AlarmStore
from plantmesh.connections import KafkaConnection
from plantmesh.contracts import AlertEvent, AlertEventKind, AssetPath, Evidence, Severity, encode
from plantmesh.kafka.security import kafka_client_options
from plantmesh.topics import Topics

KAFKA = os.environ.get("PLANTMESH_KAFKA_BOOTSTRAP", "127.0.0.1:19092")


def event(n: int, kind: str, run: str) -> AlertEvent:
    return AlertEvent(
        alert_id=f"{run}-{n}",
        kind=AlertEventKind(kind),
        issue_type="vibration-instability",
        rule="mill-vibration",
        rule_version="bench",
        machine_class="mill",
        asset=AssetPath.parse(f"plant-{n % 3}/milling/line{n % 7}/mill-{n}"),
        signal="vibration_mm_s",
        severity=Severity.HIGH,
        at=datetime.now(UTC),
        evidence=Evidence(summary=f"bench {n}", condition="zone C"),
        gateway_id=f"gw-{n % 20}",
    )


def escalation(url: str) -> dict[str, Any]:
    return {
        "version": "bench",
        "policies": [{"name": "all", "levels": [{"roles": ["operator"], "ack_within_s": 3600}]}],
        "contacts": [
            {
                "plant": "*",
                "role": "operator",
                "name": "ops",
                "channels": [{"type": "webhook", "url": url}],
            }
        ],
    }


async def record_rate(url: str, count: int) -> tuple[float, float]:
    engine = open_database(url)
    try:
        await upgrade(engine)
        config = EscalationConfig.model_validate(escalation("http://127.0.0.1:9/x"))
        store = AlarmStore(engine, escalation=config, sinks=["kafka"])
        run = uuid.uuid4().hex[:8]
        rates = []
        for kind in ("raised", "cleared"):
            start = time.perf_counter()
            made = 0
            for n in range(count):
                made += len(await store.record(event(n, kind, run)))
            rates.append(made / (time.perf_counter() - start))
        return rates[0], rates[1]
    finally:
        await engine.dispose()


class Receiver:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.arrived.setdefault(json.loads(body)["alarm_id"], time.time())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


async def latency(database: str, rate: int, seconds: int) -> list[float]:
    receiver = Receiver()
    home = Path(tempfile.mkdtemp(prefix="bench-alarms-"))
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    (home / "escalation.yaml").write_text(yaml.safe_dump(escalation(receiver.url)))
    (home / "alarms.yaml").write_text(
        yaml.safe_dump(
            {
                "namespace": namespace,
                "kafka": {"bootstrap": KAFKA},
                "database": {"url": database},
                "escalation": "escalation.yaml",
                "api": {"enabled": False},
            }
        )
    )
    service = AlarmService(load_alarm_config(home / "alarms.yaml"))
    task = asyncio.create_task(service.run())
    await service.ready.wait()
    producer = AIOKafkaProducer(
        **kafka_client_options(KafkaConnection(bootstrap=KAFKA)), acks="all"
    )
    await producer.start()
    sent: dict[str, float] = {}
    run = uuid.uuid4().hex[:8]
    topic = Topics(namespace).alert_events
    try:
        await producer.send_and_wait(topic, encode(event(-1, "raised", run)))  # topic warm
        start = time.perf_counter()
        for n in range(rate * seconds):
            due = start + n / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            item = event(n, "raised", run)
            sent[item.alert_id] = time.time()
            await producer.send(topic, encode(item), key=f"{item.asset.plant}/{n}".encode())
        deadline = time.monotonic() + 60
        while len([a for a in sent if a in receiver.arrived]) < len(sent):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    finally:
        await producer.stop()
        service.stop()
        await task
        receiver.server.shutdown()
    return sorted(receiver.arrived[a] - t for a, t in sent.items() if a in receiver.arrived)


async def _admin(server: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(server)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def fresh_postgres(server: str) -> tuple[str, str]:
    """A database of this run's own on the server (the shared one holds other alarms, whose
    pending deliveries would queue ahead of ours); (its URL, its name)."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    parts = urlsplit(server)
    return urlunsplit(parts._replace(path=f"/{name}")), name


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-records", action="store_true")
    args = parser.parse_args()
    count = 200 if args.quick else 2000
    server = os.environ.get("PLANTMESH_DATABASE_URL")
    made: list[str] = []
    targets = [("sqlite", f"sqlite:///{tempfile.mkdtemp(prefix='bench-alarms-')}/alarms.db")]
    if server:
        url, name = fresh_postgres(server)
        made.append(name)
        targets.insert(0, ("postgresql", url))
    for name, url in [] if args.skip_records else targets:
        raised, cleared = asyncio.run(record_rate(url, count))
        print(
            f"records {name:<10} {raised:8.0f} RAISED/s, {cleared:8.0f} CLEARED/s "
            f"({count} alarms; each with its trail entry, delivery, timer and outbox row)"
        )
    if not args.skip_latency and server:
        seconds = 5 if args.quick else 30
        url, name = fresh_postgres(server)
        made.append(name)
        lat = asyncio.run(latency(url, 100, seconds))
        expected = 100 * seconds
        p = statistics.quantiles(lat, n=100) if len(lat) > 1 else [float("nan")] * 99
        print(
            f"latency    RAISED on Kafka -> first webhook, 100 alerts/s for {seconds} s: "
            f"{len(lat)}/{expected} delivered, p50 {p[49] * 1000:.0f} ms, p95 {p[94] * 1000:.0f} "
            f"ms, p99 {p[98] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms"
        )
    for name in made:
        asyncio.run(_admin(server or "", f'DROP DATABASE "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
