"""Network-incident correlation: alert events per second with 10,000 open alerts in 50 plants.

    .venv/bin/python benchmarks/bench_incidents.py [--events N] [--seed S] [--skip-latency]

The fleet: 50 plants, each with 40 machines of 8 classes (2,000 machines), 10 issue types. First
10,000 alerts are raised on random (machine, issue type) pairs and stay open, spread so that most
(class, issue type) keys have members in several plants: incidents open and hold many members,
the expensive case (every update carries the whole incident). Then N further events, random
raises and clears of those pairs, are timed through the correlator, twice:

- `engine`: Correlator.on_event only (the state machine);
- `stage`: also each change made into its IncidentUpdate (explanation against the fleet) and
  encoded to JSON, the per-event work of the correlation stage besides Kafka.

Then, on the local Kafka ($PLANTMESH_KAFKA_BOOTSTRAP), the stage itself in this process (both
loops, checkpoints, a topic namespace of its own): 100 alert events/s for 30 s produced to
alerts.events, each pattern raised in plant 0, then plant 1 (the incident opens), then plant 2
(it joins); the latency of each update is from producing the alert that caused it to the update
arriving from incidents.events.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from alerting.incidents.correlator import Correlator
from alerting.incidents.policy import Correlation, CorrelationConfig
from alerting.incidents.stage import IncidentStage
from alerting.incidents.stage_config import IncidentsConfig
from alerting.incidents.updates import to_update
from plantmesh.contracts import (
    AlertEvent,
    AlertEventKind,
    AssetPath,
    Evidence,
    IncidentUpdate,
    Severity,
    encode,
)
from plantmesh.fleet import Fleet, Machine
from plantmesh.kafka.security import kafka_client_options
from plantmesh.topics import Topics

PLANTS = 50
MACHINES_PER_PLANT = 40
CLASSES = [f"class_{n}" for n in range(8)]
ISSUES = [f"issue-{n}" for n in range(10)]
OPEN_ALERTS = 10_000
T0 = datetime(2026, 12, 5, tzinfo=UTC)
POLICY = Correlation(min_plants=2, min_machines=2, window_s=3600, hold_s=600)


def fleet() -> Fleet:
    machines = []
    for p in range(PLANTS):
        for m in range(MACHINES_PER_PLANT):
            attributes = {"firmware": f"2.{m % 4}", "model": f"M-{m % 3}"}
            machines.append(Machine(f"plant-{p:02d}", f"m{m:03d}", CLASSES[m % 8], attributes))
    return Fleet(machines)


def event(n: int, machine: Machine, issue: str, kind: AlertEventKind, alert_id: str) -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id,
        kind=kind,
        issue_type=issue,
        rule="bench",
        rule_version="1",
        machine_class=machine.machine_class,
        asset=AssetPath(plant=machine.plant, area="a", line="l", machine=machine.machine),
        signal="s",
        severity=Severity.HIGH,
        at=T0 + timedelta(milliseconds=n),
        evidence=Evidence(summary="bench", condition="bench"),
    )


def workload(seed: int, count: int) -> tuple[list[AlertEvent], list[AlertEvent]]:
    rng = random.Random(seed)
    machines = list(fleet())
    open_alerts: dict[tuple[str, str, str], str] = {}
    preload: list[AlertEvent] = []
    n = 0
    while len(open_alerts) < OPEN_ALERTS:
        machine, issue = rng.choice(machines), rng.choice(ISSUES)
        key = (machine.plant, machine.machine, issue)
        if key in open_alerts:
            continue
        n += 1
        open_alerts[key] = f"a{n}"
        preload.append(event(n, machine, issue, AlertEventKind.RAISED, f"a{n}"))
    by_name = {(m.plant, m.machine): m for m in machines}
    timed: list[AlertEvent] = []
    keys = list(open_alerts)
    for _ in range(count):
        n += 1
        key = rng.choice(keys)
        machine = by_name[(key[0], key[1])]
        if key in open_alerts:  # clear it; it will be raised again later with a new id
            timed.append(event(n, machine, key[2], AlertEventKind.CLEARED, open_alerts.pop(key)))
        else:
            open_alerts[key] = f"a{n}"
            timed.append(event(n, machine, key[2], AlertEventKind.RAISED, f"a{n}"))
    return preload, timed


def run(preload: list[AlertEvent], timed: list[AlertEvent], stage: bool) -> tuple[float, int]:
    the_fleet = fleet()
    correlator = Correlator(CorrelationConfig(version="bench", default=POLICY))
    for e in preload:
        correlator.on_event(e)
    changes = 0
    started = time.perf_counter()
    for e in timed:
        made = correlator.on_event(e)
        changes += len(made)
        if stage:
            for change in made:
                encode(to_update(change, the_fleet, POLICY))
    return len(timed) / (time.perf_counter() - started), changes


async def latency(bootstrap: str, rate: float, seconds: float) -> tuple[list[float], int]:
    """(latencies in s of every update, updates expected)."""
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    topics = Topics(namespace)
    config = IncidentsConfig.model_validate(
        {"namespace": namespace, "kafka": {"bootstrap": bootstrap}, "tick_s": 1}
    )
    stage = IncidentStage(config, CorrelationConfig(version="bench", default=POLICY), fleet())
    task = asyncio.create_task(stage.run())
    consumer = AIOKafkaConsumer(
        topics.incident_events, **kafka_client_options(config.kafka), auto_offset_reset="earliest"
    )
    producer = AIOKafkaProducer(**kafka_client_options(config.kafka), linger_ms=0)
    sent: dict[str, float] = {}
    latencies: dict[tuple[str, int], float] = {}
    total = int(rate * seconds)
    expected = 2 * (total // 3)  # opened on the second plant, joined on the third
    all_in = asyncio.Event()
    try:
        await asyncio.wait_for(stage.rekey.assigned.wait(), 60)
        await asyncio.wait_for(stage.correlate.assigned.wait(), 60)
        await consumer.start()
        await producer.start()

        async def collect() -> None:
            async for record in consumer:
                now = time.perf_counter()
                update = IncidentUpdate.model_validate_json(record.value or b"")
                if update.member is not None and update.member.alert_id in sent:
                    key = (update.incident_id, update.version)
                    latencies[key] = now - sent[update.member.alert_id]
                if len(latencies) >= expected:
                    all_in.set()

        reader = asyncio.create_task(collect())
        machines = [m for m in fleet() if m.plant in ("plant-00", "plant-01", "plant-02")]
        by_plant = {
            p: [m for m in machines if m.plant == p] for p in ("plant-00", "plant-01", "plant-02")
        }
        started = time.perf_counter()
        for n in range(total):
            pattern, step = divmod(n, 3)
            plant = f"plant-{step:02d}"
            machine = by_plant[plant][pattern % 8]  # one machine of each class per plant
            issue = f"issue-{pattern // 8}"
            alert = event(n, machine, issue, AlertEventKind.RAISED, f"lat{n}")
            due = started + n / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            sent[alert.alert_id] = time.perf_counter()
            key = f"{machine.plant}/{machine.machine}".encode()
            await producer.send(topics.alert_events, encode(alert), key=key)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), 60)
        reader.cancel()
        return sorted(latencies.values()), expected
    finally:
        await producer.stop()
        await consumer.stop()
        stage.stop()
        await task


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    preload, timed = workload(args.seed, args.events)
    probe = Correlator(CorrelationConfig(version="bench", default=POLICY))
    for e in preload:
        probe.on_event(e)
    incidents = list(probe.open_incidents())
    members = sum(len(i.members) for i in incidents)
    print(
        f"fleet: {PLANTS} plants, {PLANTS * MACHINES_PER_PLANT} machines, {len(CLASSES)} classes, "
        f"{len(ISSUES)} issue types; {OPEN_ALERTS} open alerts -> {len(incidents)} open "
        f"incidents holding {members} members"
    )
    for stage in (False, True):
        rate, changes = run(preload, timed, stage)
        name = "stage " if stage else "engine"
        print(
            f"{name}  {rate:10,.0f} alert events/s ({len(timed)} events, {changes} incident "
            f"changes{', each made an IncidentUpdate and encoded' if stage else ''})"
        )
    bootstrap = os.environ.get("PLANTMESH_KAFKA_BOOTSTRAP")
    if args.skip_latency or not bootstrap:
        return 0
    lat, expected = asyncio.run(latency(bootstrap, 100, 30))
    p = statistics.quantiles(lat, n=100) if len(lat) > 1 else [float("nan")] * 99
    print(
        f"latency member alert on Kafka -> incident update on Kafka, 100 alert events/s for 30 s: "
        f"{len(lat)}/{expected} updates, p50 {p[49] * 1000:.0f} ms, p95 {p[94] * 1000:.0f} ms, "
        f"p99 {p[98] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
