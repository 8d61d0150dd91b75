"""Scale-out of the ingest writer: CPU per reading with one and with two writer processes in one
consumer group, on a raw topic of six partitions, in the same run.

    .venv/bin/python benchmarks/bench_scale_out.py [--readings 300000] [--writers 1 2]

On a two-core machine that also runs Kafka and InfluxDB, wall-clock throughput cannot double
with a second writer (the servers already take most of the cores): the honest figure is the
CPU each reading costs the writers together, which stays flat when the work is shared without
overhead. From it follows the throughput one more core buys: 1 / (CPU s per reading).

Each round: a fresh namespace and database, the writers started as processes (`python -m ingest
writer`, as deployed) and waited for until every partition is assigned, then the batches are
produced while they consume; the round ends when the group has committed every record. CPU is
read from /proc for the writers and the local servers between those two moments.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from cpu_meter import cpu_s
from ingest_workload import (
    INFLUX,
    KAFKA,
    delete_topics,
    fill_raw,
    influx_call,
    local_servers,
    make_batches,
)

from plantmesh.connections import KafkaConnection
from plantmesh.kafka.admin import ensure_topics
from plantmesh.topics import Topics
from tests.support.kafka import group_lag  # the tests' view of a group, shared
from tests.support.scale_out import group_members

PARTITIONS = 6
PER_BATCH = 50
MACHINES = tuple(f"m{i:02d}" for i in range(24))  # keys enough for every partition


def start_writers(count: int, config: Path) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = []
    for i in range(count):
        with config.with_suffix(f".{i}.log").open("wb") as log:
            argv = [sys.executable, "-m", "ingest", "writer", "--config", str(config)]
            procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env))
    return procs


async def poll(done: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")
        await asyncio.sleep(0.05)


async def one_round(writers: int, readings: int, workdir: Path) -> dict[str, float]:
    namespace = f"bso{uuid.uuid4().hex[:8]}"
    topics = Topics(namespace)
    config = {
        "namespace": namespace,
        "kafka": {"bootstrap": KAFKA, "client_id": namespace},
        "kafka_topics": {"partitions": PARTITIONS},
        "influxdb": {"url": INFLUX, "bucket": f"{namespace}/autogen"},
        "writer": {"group_id": f"{namespace}-writer"},
    }
    path = workdir / f"{namespace}.yaml"
    path.write_text(yaml.safe_dump(config))
    group = f"{namespace}-writer"
    await ensure_topics(KafkaConnection(bootstrap=KAFKA), [topics.telemetry_raw], PARTITIONS, 1)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    batches = make_batches(readings // PER_BATCH, PER_BATCH, start, MACHINES)
    procs = start_writers(writers, path)
    try:

        async def joined() -> bool:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a writer ended: see {workdir}")
            return len(await group_members(KAFKA, group)) == writers

        await poll(joined, 120, f"{writers} writers in {group}")
        servers = local_servers()
        pids = {f"writer {i + 1}": p.pid for i, p in enumerate(procs)} | servers
        before = {name: cpu_s(pid) or 0.0 for name, pid in pids.items()}
        began = time.perf_counter()
        await fill_raw(topics.telemetry_raw, batches)

        async def drained() -> bool:
            return await group_lag(KAFKA, group, topics.telemetry_raw) == 0

        await poll(drained, 600, "every record committed")
        wall = time.perf_counter() - began
        used = {name: (cpu_s(pid) or 0.0) - before[name] for name, pid in pids.items()}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        influx_call("/query", {"q": f'DROP DATABASE "{namespace}"'})
        await delete_topics(namespace)
    used["wall"] = wall
    return used


def report(writers: int, readings: int, used: dict[str, float]) -> str:
    wall = used.pop("wall")
    ours = sum(v for k, v in used.items() if k.startswith("writer"))
    us = ours / readings * 1e6
    servers = ", ".join(
        f"{k} {v / readings * 1e6:.1f}" for k, v in used.items() if not k.startswith("writer")
    )
    shares = " + ".join(f"{v:.1f}" for k, v in used.items() if k.startswith("writer"))
    return (
        f"{writers} writer(s): {readings / wall:>9,.0f} readings/s wall, writers' CPU "
        f"{ours:5.1f} s ({shares}) = {us:5.2f} µs/reading -> {1e6 / us:>9,.0f} readings/s per "
        f"writer core; servers µs/reading: {servers}"
    )


async def main(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    print(f"{args.readings:,} readings in batches of {PER_BATCH}, {PARTITIONS} partitions")
    lines = []
    for writers in args.writers:
        used = await one_round(writers, args.readings, workdir)
        lines.append(report(writers, args.readings, used))
        print(lines[-1], flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=300_000)
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workdir", default="/tmp/plantmesh-bench-scale-out")
    asyncio.run(main(parser.parse_args()))
