"""The network-incident stage as a group of processes against a real Kafka: two in one group open
each incident once while the partitions move between them, and after a kill -9 the next member
restores the checkpoint and joins the same incident, without a second OPENED."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from alerting.checkpoint import load
from plantmesh.contracts import AlertEvent, IncidentUpdate
from plantmesh.topics import Topics
from tests.support.incident_stage import (
    BEARINGS,
    MILLS,
    assert_consistent,
    event,
    opened,
    plants_a_and_b,
    running,
    send,
    spans,
    wait_updates,
    write_config,
)
from tests.support.kafka import kafka_options, partitions_of, read_all
from tests.support.waiting import async_wait_for, now

pytestmark = pytest.mark.integration


@pytest.fixture
def config(tmp_path: Path, namespace: str, kafka_bootstrap: str) -> Path:
    return write_config(tmp_path, namespace, kafka_bootstrap)


@pytest.mark.slow
async def test_two_processes_in_one_group_open_each_incident_once(
    config: Path, namespace: str, kafka_bootstrap: str, producer: AIOKafkaProducer
) -> None:
    others = [
        ("hydraulic_press", MILLS[1]),
        ("conveyor", "process-drift"),
        ("pump", "pressure-loss"),
    ]
    patterns = [MILLS, BEARINGS, *others]

    def members(plant: str) -> list[AlertEvent]:
        return [event(f"{plant}-{n}", f"{plant}/m-{n}", pattern=p) for n, p in enumerate(patterns)]

    def incidents_spanning(plants: int) -> Callable[[list[IncidentUpdate]], bool]:
        return lambda us: (
            len({u.incident_id for u in us if len(u.plants) >= plants}) == len(patterns)
        )

    async with running(config) as first:
        await send(producer, namespace, *members("plant-a"), *members("plant-b"))
        await wait_updates(
            kafka_bootstrap, namespace, incidents_spanning(2), "every incident opened"
        )
        async with running(config) as second:
            await async_wait_for(
                lambda: now(first.correlate.partitions and second.correlate.partitions),
                30,
                "the partitions split between the two",
            )
            await send(producer, namespace, *members("plant-c"))
            await wait_updates(
                kafka_bootstrap, namespace, incidents_spanning(3), "plant-c joined each"
            )
        await send(producer, namespace, *members("plant-d"))  # the first owns everything again
        updates = await wait_updates(
            kafka_bootstrap, namespace, incidents_spanning(4), "plant-d joined each"
        )
    assert len(opened(updates)) == len(patterns)
    assert_consistent(updates)


# --- kill -9 ------------------------------------------------------------------------------------
@contextmanager
def stage_process(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m alerting incidents` as its own process, killed if the test did not stop it."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "alerting", "incidents", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def checkpointed_to_end(bootstrap: str, namespace: str) -> bool:
    """incidents.state holds, for every partition of alerts.by_class that has records, a
    checkpoint that covers them all."""
    topics = Topics(namespace)
    tps = await partitions_of(bootstrap, topics.alerts_by_class)
    check = AIOKafkaConsumer(**kafka_options(bootstrap))
    await check.start()
    try:
        ends = await check.end_offsets(tps)
    finally:
        await check.stop()
    checkpoints = [load(value) for _, value in await read_all(bootstrap, topics.incidents_state)]
    covered = {c.partition: c.offsets[topics.alerts_by_class] for c in checkpoints}  # the latest
    return all(covered.get(tp.partition, 0) >= end for tp, end in ends.items())


@pytest.mark.slow
async def test_kill_9_mid_incident_the_next_member_joins_the_same_incident(
    config: Path, namespace: str, kafka_bootstrap: str, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    async def owns(log: Path) -> bool:
        return b"incidents owns partitions" in await asyncio.to_thread(log.read_bytes)

    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with stage_process(config, first_log) as first:
        await async_wait_for(lambda: owns(first_log), 60, "the first process took partitions")
        await send(producer, namespace, *plants_a_and_b())
        await wait_updates(kafka_bootstrap, namespace, spans(2), "the incident opened")
        await async_wait_for(
            lambda: checkpointed_to_end(kafka_bootstrap, namespace), 30, "a checkpoint of it"
        )
        first.kill()  # SIGKILL: no hand-over, no final checkpoint
    with stage_process(config, second_log):
        await async_wait_for(lambda: owns(second_log), 60, "the second process took partitions")
        await send(producer, namespace, event("c1", "plant-c/mill-02"))
        updates = await wait_updates(kafka_bootstrap, namespace, spans(3), "plant-c joined")
    assert re.search(rb"\([1-9]\d* restored from checkpoints\)", second_log.read_bytes())
    # The checkpoint covered the OPENED: the restart neither opened it again nor re-sent it.
    assert [(u.change.value, u.version) for u in updates] == [("opened", 1), ("joined", 2)]
    assert updates[0].incident_id == updates[1].incident_id
    assert_consistent(updates)
