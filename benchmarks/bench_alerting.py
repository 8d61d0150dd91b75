"""Alerting throughput and latency, each figure printed next to its target.

    .venv/bin/python benchmarks/bench_alerting.py [--quick] [--profile engine.txt]
        [--skip-latency | --skip-engine]

1. engine: readings evaluated per second by one process (alerting.engine.Engine, no Kafka) with
   the whole rule catalogue on 500 machines: 5 machine classes, 20 rules per class (every rule
   type, several instances each, targeted with `machine_classes`, some gated on `running`),
   10 signals per machine at 1 Hz of event time (a seeded mean-reverting random walk around a
   nominal value plus sensor noise; `running` and `mode` change rarely), one ReadingBatch per
   machine per second with its machine class, `advance()` once per 500 batches as the service
   does once per poll. Target: 200,000 readings/s. The events raised on this normal data are
   printed by rule type: they are false alarms. A run of rules that decide nothing gives the
   engine's own floor; another times each rule call (by rule type, calls that make events
   apart) for the shares of the cost; `--profile FILE` adds a cProfile run (top 25 by tottime)
   of its own.
2. latency: the real alerting service (`python -m alerting run`, as deployed: its poll timeout,
   its sinks, its commit after every poll) on the local Kafka, fed normalized batches with the
   `machine_class` header at a steady 10,000 readings/s (1,000 machines x 10 signals at 1 Hz).
   Scheduled excursions, each on its own machine, make a `threshold` rule with on_delay_s 0
   raise; each raised event's latency is from the producer's send of its batch to this
   process's consumer of alerts.events receiving it. Target: p99 < 500 ms.

Every phase reports the CPU time it cost: this process, the service and (when local) Kafka.
Servers: PLANTMESH_KAFKA_BOOTSTRAP (the local stack's default otherwise). Topics, the consumer
groups and the temporary directory are namespaced and deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from alerting_engine_run import part_engine
from alerting_fleet import Fleet, Machine, catalogue_rules
from cpu_meter import CpuMeter, local_server_pids

from alerting.config import AlertingConfig
from plantmesh.connections import DEFAULT_KAFKA_BOOTSTRAP, KafkaConnection
from plantmesh.contracts import ReadingBatch, encode
from plantmesh.kafka.security import kafka_client_options
from plantmesh.topics import HEADER_MACHINE_CLASS, Topics

KAFKA = os.environ.get("PLANTMESH_KAFKA_BOOTSTRAP") or DEFAULT_KAFKA_BOOTSTRAP


def kafka_options() -> dict[str, Any]:
    """Our own clients' connection: the environment's credentials (`plantmesh stack env`)."""
    return kafka_client_options(KafkaConnection(bootstrap=KAFKA))


ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 1, 1, tzinfo=UTC)

# --- 2. latency through the service -----------------------------------------------------------
MACHINES_E2E = 1000  # x 10 signals at 1 Hz = 10,000 readings/s


def service_config(namespace: str, directory: Path) -> Path:
    config = {
        "namespace": namespace,
        "kafka": {"bootstrap": KAFKA, "client_id": namespace},
        "group_id": f"{namespace}-alerting",
        "start_from": "earliest",
        "kafka_topics": {"create": True, "partitions": 4, "replication_factor": 1},
        "alert_log": str(directory / "alerts.jsonl"),
        "rules": catalogue_rules(),
    }
    AlertingConfig.model_validate(config)  # fail here, not in the subprocess
    path = directory / "alerting.yaml"
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    return path


def excursion_batch(batch: ReadingBatch, machine: Machine) -> ReadingBatch:
    """The same batch with bearing_temp far above the class's trip limit (bearing-trip)."""
    hot = machine.nominal["bearing_temp"] + 80.0
    readings = [
        r.model_copy(update={"value": hot}) if r.signal == "bearing_temp" else r
        for r in batch.readings
    ]
    return batch.model_copy(update={"readings": readings})


@dataclass
class Outgoing:
    at: float  # planned wall-clock send time (time.time())
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    excursion: str | None  # the machine id, when this batch should raise


def plan(start: float, warmup_s: int, measured_s: int, per_s: int) -> Iterator[Outgoing]:
    """Every machine once a second, spread evenly within the second; `per_s` excursions a
    second during the measured seconds, each on a machine not used before."""
    fleet = Fleet(MACHINES_E2E, seed=2)
    order = list(range(MACHINES_E2E))
    random.Random(3).shuffle(order)
    chosen = iter(order)
    start_dt = datetime.fromtimestamp(math.floor(start), UTC)
    offset = start - math.floor(start)
    for t in range(warmup_s + measured_s):
        hot: set[int] = set()
        if t >= warmup_s:
            hot = {next(chosen) for _ in range(per_s)}
        for i, (machine, batch) in enumerate(fleet.second(t, start_dt)):
            if i in hot:
                batch = excursion_batch(batch, machine)
            yield Outgoing(
                at=math.floor(start) + offset + t + i / MACHINES_E2E,
                key=f"{machine.asset.plant}/{machine.asset.machine}".encode(),
                value=encode(batch),
                headers=[(HEADER_MACHINE_CLASS, machine.cls.encode())],
                excursion=machine.asset.machine if i in hot else None,
            )


async def produce(
    producer: AIOKafkaProducer, topic: str, batches: list[Outgoing], sent: dict[str, float]
) -> float:
    """Send each batch at its planned time (in groups every 10 ms); returns the worst lag
    behind the plan, in seconds."""
    worst = 0.0
    futures = []
    i = 0
    while i < len(batches):
        now = time.time()
        if batches[i].at > now:
            await asyncio.sleep(min(0.01, batches[i].at - now))
            continue
        worst = max(worst, now - batches[i].at)
        while i < len(batches) and batches[i].at <= now:
            out = batches[i]
            if out.excursion is not None:
                sent[out.excursion] = time.time()
            futures.append(await producer.send(topic, out.value, key=out.key, headers=out.headers))
            i += 1
    await asyncio.gather(*futures)
    return worst


async def collect(
    consumer: AIOKafkaConsumer, received: dict[str, float], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        for records in (await consumer.getmany(timeout_ms=50)).values():
            now = time.time()
            for record in records:
                event = json.loads(record.value or b"{}")
                if event.get("kind") == "raised" and event.get("rule", "").endswith(
                    "-bearing-trip"
                ):
                    received.setdefault(event["asset"]["machine"], now)


def start_service(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """The service as deployed: its own process, `python -m alerting run --config`."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "alerting", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def wait_for_log(
    path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while text not in await asyncio.to_thread(path.read_text, errors="replace"):
        if proc.poll() is not None:
            raise RuntimeError(f"the alerting service exited ({proc.returncode}); see {path}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {text!r} in {path} after {timeout} s")
        await asyncio.sleep(0.1)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


async def bench_latency(
    namespace: str, directory: Path, warmup_s: int, measured_s: int, per_s: int
) -> list[str]:
    topics = Topics(namespace)
    admin = AIOKafkaAdminClient(**kafka_options())
    await admin.start()
    try:  # the service creates them too (same settings); here so the consumer can start first
        await admin.create_topics(
            [NewTopic(t, 4, 1) for t in (topics.telemetry_normalized, topics.alert_events)]
        )
    finally:
        await admin.close()
    log_path = directory / "service.log"
    proc = start_service(service_config(namespace, directory), log_path)
    consumer = AIOKafkaConsumer(
        topics.alert_events, **kafka_options(), auto_offset_reset="earliest"
    )
    producer = AIOKafkaProducer(  # the ingest writer's settings (plantmesh.kafka.clients)
        **kafka_options(), enable_idempotence=True, acks="all", linger_ms=5,
        max_batch_size=1 << 20,
    )  # fmt: skip
    received: dict[str, float] = {}
    sent: dict[str, float] = {}
    stop = asyncio.Event()
    collector: asyncio.Task[None] | None = None
    try:
        await consumer.start()
        await producer.start()
        collector = asyncio.create_task(collect(consumer, received, stop), name="collect")
        await wait_for_log(log_path, "rule(s)", proc, 60)
        # A probe excursion: its alert proves the service joined its group and runs end to end.
        fleet = Fleet(1, seed=9)
        machine, batch = fleet.second(0, datetime.now(UTC))[0]
        probe = excursion_batch(batch, machine)
        probe_key = f"{machine.asset.plant}/{machine.asset.machine}".encode()
        await producer.send_and_wait(
            topics.telemetry_normalized, encode(probe), key=probe_key,
            headers=[(HEADER_MACHINE_CLASS, machine.cls.encode())],
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while machine.asset.machine not in received:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"no alert for the probe excursion; see {log_path}")
            await asyncio.sleep(0.05)
        built = time.perf_counter()
        # The planned start: building the batches (about 0.1 ms each) must fit before it.
        start = time.time() + 2.0 + (warmup_s + measured_s) * MACHINES_E2E * 2e-4
        batches = list(plan(start, warmup_s, measured_s, per_s))
        if time.time() > start:
            raise RuntimeError(f"building {len(batches)} batches took too long")
        build_s = time.perf_counter() - built
        meter = CpuMeter({"service": proc.pid} | local_server_pids({KAFKA}))
        await asyncio.sleep(start - time.time())
        meter.start()
        lag = await produce(producer, topics.telemetry_normalized, batches, sent)
        deadline = time.monotonic() + 15
        while set(sent) - set(received) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        meter.stop()
    finally:
        stop.set()
        if collector is not None:
            await collector
        await producer.stop()
        await consumer.stop()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    latencies = [(received[m] - at) * 1000 for m, at in sent.items() if m in received]
    missing = len(sent) - len(latencies)
    readings = len(batches) * 10
    lines = [
        f"sent {len(batches):,} batches ({readings:,} readings, {warmup_s} s warm-up + "
        f"{measured_s} s) at {readings / (warmup_s + measured_s):,.0f} readings/s; producer at "
        f"most {lag * 1000:.0f} ms behind its plan (batches built in {build_s:.1f} s)",
        f"excursions: {len(sent)} sent, {len(latencies)} raised events received, {missing} missing",
    ]
    if latencies:
        first = min(sent.values())
        worst = sorted(
            ((received[m] - at) * 1000, at - first) for m, at in sent.items() if m in received
        )
        lines.append(
            "worst 5, ms (at s of the run): "
            + ", ".join(f"{ms:.0f} ({s:.1f})" for ms, s in reversed(worst[-5:]))
        )
        p99 = percentile(latencies, 99)
        verdict = "ok" if p99 < 500 and not missing else "below"
        lines.append(
            f"latency send -> alerts.events, ms: p50 {percentile(latencies, 50):.0f}  "
            f"p95 {percentile(latencies, 95):.0f}  p99 {p99:.0f}  max {max(latencies):.0f}  "
            f"mean {statistics.fmean(latencies):.0f}  (target p99 < 500: {verdict})"
        )
    slow = [line for line in log_path.read_text(errors="replace").splitlines() if "slow" in line]
    lines += [f"service: {line.split('] ', 1)[-1]}" for line in slow[-3:]]
    lines.append(meter.line("e2e"))
    service_cpu = meter.used.get("service")
    if service_cpu is not None:
        lines.append(
            f"service CPU: {service_cpu / meter.wall:.0%} of a core, "
            f"{service_cpu / readings * 1e6:.1f} µs per reading (decode, rules, sinks, Kafka)"
        )
    return lines


# --- the run ----------------------------------------------------------------------------------
async def delete_topics(namespace: str) -> None:
    admin = AIOKafkaAdminClient(**kafka_options())
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(namespace)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


async def main(args: argparse.Namespace) -> None:
    if not args.skip_engine:
        print("\n".join(part_engine(args)))
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    warmup_s, measured_s, per_s = (2, 5, 4) if args.quick else (5, 30, 4)
    print(
        f"\nlatency: python -m alerting run, {MACHINES_E2E} machines x 10 signals at 1 Hz, "
        f"{per_s} excursions/s on distinct machines"
    )
    try:
        with tempfile.TemporaryDirectory(prefix=f"{namespace}-") as directory:
            lines = await bench_latency(namespace, Path(directory), warmup_s, measured_s, per_s)
    finally:
        await delete_topics(namespace)
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    parser.add_argument(
        "--profile", type=Path, help="write a cProfile summary (top 25 by tottime) of the engine"
    )
    parser.add_argument("--skip-latency", action="store_true", help="only the engine part")
    parser.add_argument("--skip-engine", action="store_true", help="only the latency part")
    parsed = parser.parse_args()
    if parsed.skip_latency:
        print("\n".join(part_engine(parsed)))
    else:
        asyncio.run(main(parsed))
