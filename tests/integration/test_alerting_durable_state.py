"""Durable alerting state against a real Kafka: rule state checkpointed with the input offsets
survives a clean stop, a kill -9 and a hand-over between two processes of one consumer group,
and every alert is raised exactly once and cleared exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaProducer

from alerting.config import AlertingConfig
from alerting.service import AlertingService
from plantmesh.contracts import AlertEvent, AssetPath, Reading, ReadingBatch, decode, encode
from plantmesh.topics import HEADER_MACHINE_CLASS, Topics, gateway_key
from tests.support.kafka import committed_and_ends, read_all
from tests.support.waiting import async_wait_for, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RULE = (
    "  - {name: bearing-overtemp, type: threshold, issue_type: bearing-overtemperature,\n"
    "     signal: bearing_temp, above: 90.0, deadband: 5.0, on_delay_s: 5.0}\n"
)


def config_text(namespace: str, bootstrap: str, alert_log: Path, partitions: int) -> str:
    return (
        f"namespace: {namespace}\n"
        f"kafka: {{bootstrap: '{bootstrap}'}}\n"
        f"group_id: {namespace}-alerting\n"
        f"alert_log: {alert_log}\n"
        f"kafka_topics: {{partitions: {partitions}, replication_factor: 1}}\n"
        "checkpoint_interval_s: 3600\n"  # only the hand-overs and clean stops checkpoint
        f"rules:\n{RULE}"
    )


def batch(gateway: str, seq: int, t: int, value: float) -> ReadingBatch:
    ts = T0 + timedelta(seconds=t)
    reading = Reading(
        asset=AssetPath.parse(f"plant-a/area/line/press-{gateway}"),
        signal="bearing_temp",
        value=value,
        unit="degC",
        source_ts=ts,
        gateway_ts=ts,
    )
    return ReadingBatch(
        gateway_id=gateway, session_id="s1", seq=seq, sent_at=ts, readings=[reading]
    )


def excursion(t: int) -> float:
    """80, then 95 for t in [10, 25) (raised at 15, cleared at 25), 80 again; the same 40 s
    later (raised at 55, cleared at 65)."""
    return 95.0 if 10 <= t % 40 < 25 else 80.0


async def send(producer: AIOKafkaProducer, topic: str, gateways: list[str], ts: range) -> None:
    for t in ts:
        for gateway in gateways:
            await producer.send_and_wait(
                topic,
                encode(batch(gateway, t, t, excursion(t))),
                key=gateway_key("plant-a", gateway),  # as the writer keys them
                headers=[(HEADER_MACHINE_CLASS, b"press")],
            )


async def all_committed(bootstrap: str, group: str, topic: str) -> bool:
    """The group committed every record of `topic`."""
    committed, ends = await committed_and_ends(bootstrap, group, topic)
    return all(committed[tp] == end for tp, end in ends.items())


@contextmanager
def service_process(config: Path, stderr: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`plantmesh alerting run` as its own process, killed if the test did not stop it."""
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "alerting", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        wait_for(lambda: b"alerting owns partitions" in stderr.read_bytes(), 60, "assignment")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def logged(alert_log: Path) -> list[AlertEvent]:
    if not alert_log.exists():
        return []
    return [decode(AlertEvent, line) for line in alert_log.read_bytes().splitlines()]


async def test_kill_9_mid_episode_gives_no_second_raised_and_no_lost_cleared(
    kafka_bootstrap: str, namespace: str, tmp_path: Path, producer: AIOKafkaProducer
) -> None:
    topics = Topics(namespace)
    group = f"{namespace}-alerting"
    alert_log = tmp_path / "alerts.jsonl"
    config = tmp_path / "alerting.yaml"
    config.write_text(config_text(namespace, kafka_bootstrap, alert_log, partitions=2))
    normalized = topics.telemetry_normalized

    async def consumed_everything() -> bool:
        return await all_committed(kafka_bootstrap, group, normalized)

    # 1. Before the episode, then a clean stop: the stop checkpoints the state.
    with service_process(config, tmp_path / "run1.log") as proc:
        await send(producer, normalized, ["gw-1"], range(0, 10))
        await async_wait_for(consumed_everything, 60, "run 1 to consume t < 10")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0

    # 2. The episode is raised and its offsets committed, then kill -9 before any checkpoint.
    with service_process(config, tmp_path / "run2.log") as proc:
        await send(producer, normalized, ["gw-1"], range(10, 21))
        wait_for(lambda: len(logged(alert_log)) == 1, 60, "the raise")
        await async_wait_for(consumed_everything, 60, "run 2 to commit t <= 20")
        proc.kill()
        proc.wait()

    # 3. Restored from run 1's checkpoint: the replay of t = 10..20 raises again, which was
    # published already and is skipped; the clear comes from the restored episode.
    with service_process(config, tmp_path / "run3.log") as proc:
        await send(producer, normalized, ["gw-1"], range(21, 40))
        wait_for(lambda: len(logged(alert_log)) >= 2, 60, "the clear")
        await async_wait_for(consumed_everything, 60, "run 3 to consume everything")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0

    assert [(e.kind.value, e.at) for e in logged(alert_log)] == [
        ("raised", T0 + timedelta(seconds=15)),
        ("cleared", T0 + timedelta(seconds=25)),
    ]
    on_kafka = [
        decode(AlertEvent, v) for _, v in await read_all(kafka_bootstrap, topics.alert_events)
    ]
    assert [(e.kind.value, e.at) for e in on_kafka] == [
        ("raised", T0 + timedelta(seconds=15)),
        ("cleared", T0 + timedelta(seconds=25)),
    ]
    run3 = (tmp_path / "run3.log").read_text()
    assert "1 restored from checkpoints" in run3
    assert "republished_skipped=1" in run3  # the raise the replay made again
    assert "Traceback" not in run3


@asynccontextmanager
async def in_process(config: AlertingConfig) -> AsyncIterator[AlertingService]:
    service = AlertingService(config)
    task = asyncio.create_task(service.run(), name="test.alerting")
    try:
        await asyncio.wait_for(service.ready.wait(), 30)
        yield service
    finally:
        service.stop()
        await asyncio.wait_for(task, 30)


async def test_two_processes_split_the_gateways_and_hand_over_mid_episode(
    kafka_bootstrap: str, namespace: str, tmp_path: Path, producer: AIOKafkaProducer
) -> None:
    topics = Topics(namespace)
    gateways = [f"gw-{i}" for i in range(8)]
    text = config_text(namespace, kafka_bootstrap, tmp_path / "alerts.jsonl", partitions=4)
    raw = yaml.safe_load(text)
    a_config = AlertingConfig.model_validate({**raw, "alert_log": str(tmp_path / "a.jsonl")})
    b_config = AlertingConfig.model_validate({**raw, "alert_log": str(tmp_path / "b.jsonl")})

    async def events() -> list[AlertEvent]:
        return [
            decode(AlertEvent, v) for _, v in await read_all(kafka_bootstrap, topics.alert_events)
        ]

    async with in_process(a_config) as a:
        async with in_process(b_config) as b:

            async def split() -> bool:
                owned = (set(a.shards.by_partition), set(b.shards.by_partition))
                return (
                    all(owned) and owned[0] | owned[1] == {0, 1, 2, 3} and not owned[0] & owned[1]
                )

            await async_wait_for(split, 60, "the two processes to split the partitions")
            await send(producer, topics.telemetry_normalized, gateways, range(0, 40))

            async def first_episodes_over() -> bool:
                return Counter(e.kind.value for e in await events()) == {"raised": 8, "cleared": 8}

            await async_wait_for(first_episodes_over, 60, "8 raised and 8 cleared")
            assert a.stats.events, "both processes should own some gateways"
            assert b.stats.events, "both processes should own some gateways"

            await send(producer, topics.telemetry_normalized, gateways, range(40, 60))

            async def second_raised() -> bool:
                return Counter(e.kind.value for e in await events())["raised"] == 16

            await async_wait_for(second_raised, 60, "the second episodes raised")
        # b stopped mid-episode: its partitions and their open episodes go to a.

        async def a_owns_all() -> bool:
            return set(a.shards.by_partition) == {0, 1, 2, 3}

        await async_wait_for(a_owns_all, 60, "a to take over b's partitions")
        await send(producer, topics.telemetry_normalized, gateways, range(60, 80))

        async def all_cleared() -> bool:
            return Counter(e.kind.value for e in await events())["cleared"] == 16

        await async_wait_for(all_cleared, 60, "every second episode cleared")
        assert a.stats.restored >= 1

    per_alert: dict[str, list[str]] = {}
    for event in await events():
        per_alert.setdefault(event.alert_id, []).append(event.kind.value)
    assert len(per_alert) == 16
    assert all(kinds == ["raised", "cleared"] for kinds in per_alert.values()), per_alert
