"""What the duplicate window's recall costs a writer that takes partitions (issue 13).

    eval "$(.venv/bin/plantmesh stack env)"
    .venv/bin/python benchmarks/bench_recall.py [--batches 20000] [--per-batch 20]

Fills a fresh telemetry.raw with `--batches` reading batches, lets a first writer store them all
(its live rate is the reference), stops it, and starts a second writer of the same group: before
it checks anything it reads back the committed tail into its window. Reported side by side: the
first writer's batches per second stored, the second's batches per second recalled, and what a
full default window (100,000 batches) would take at that rate.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_ingest import INFLUX, KAFKA, delete_topics, fill_raw, influx_call, make_batches

from ingest.config import IngestConfig
from ingest.writer import Writer
from plantmesh.config import validate_config
from plantmesh.kafka.admin import ensure_topics

DEFAULT_WINDOW = 100_000


async def _until(predicate: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the writer did not get there in time")
        await asyncio.sleep(0.01)


async def run(namespace: str, batches_n: int, per_batch: int) -> None:
    config = validate_config(
        IngestConfig,
        {
            "namespace": namespace,
            "kafka": {"bootstrap": KAFKA, "client_id": namespace},
            "influxdb": {"url": INFLUX, "bucket": f"{namespace}/autogen"},
            "writer": {"group_id": f"{namespace}-writer", "completeness": {"enabled": False}},
        },
    )
    raw = config.topics.telemetry_raw
    topics = config.kafka_topics
    await ensure_topics(config.kafka, [raw], topics.partitions, topics.replication_factor)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    await fill_raw(raw, make_batches(batches_n, per_batch, start))

    first = Writer(config)
    task = asyncio.create_task(first.run())
    began = time.perf_counter()
    await _until(lambda: first.stats.batches + first.stats.dlq >= batches_n, 600)
    stored_s = time.perf_counter() - began
    first.stop()
    await task

    second = Writer(config)
    task = asyncio.create_task(second.run())
    began = time.perf_counter()
    await _until(lambda: second.recall.recalled >= batches_n, 600)
    recalled_s = time.perf_counter() - began  # from start: the group join is part of the cost
    second.stop()
    await task
    influx_call("/query", {"q": f'DROP DATABASE "{namespace}"'})

    live, recall = batches_n / stored_s, batches_n / recalled_s
    print(f"{batches_n:,} batches of {per_batch} readings, {topics.partitions} partitions")
    print(f"{'':34}{'batches/s':>12}{'seconds':>10}")
    print(f"{'first writer, stored (reference)':34}{live:>12,.0f}{stored_s:>10.1f}")
    print(f"{'second writer, recalled at start':34}{recall:>12,.0f}{recalled_s:>10.1f}")
    print(f"a full window of {DEFAULT_WINDOW:,} batches: ~{DEFAULT_WINDOW / recall:.0f} s at start")


async def main(args: argparse.Namespace) -> None:
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    try:
        await run(namespace, args.batches, args.per_batch)
    finally:
        await delete_topics(namespace)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=20_000)
    parser.add_argument("--per-batch", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
