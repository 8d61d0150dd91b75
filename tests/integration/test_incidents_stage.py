"""The network-incident stage against a real Kafka: member alerts of three plants on
alerts.events open one incident on incidents.events (alarm transitions, other issue types,
other classes, instrument problems and two machines of one plant do not), it survives a clean
restart, a kill -9 and a second process in its group without a second OPENED, and records that
are not alert events are skipped."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from alerting.checkpoint import load
from alerting.incidents.stage import IncidentStage
from alerting.incidents.stage_config import load_incidents_config
from plantmesh.contracts import (
    ALARM_TRANSITION_CONTRACT,
    CONTRACT_HEADER,
    INCIDENT_CONTRACT,
    AlertEvent,
    AlertEventKind,
    AssetPath,
    Evidence,
    IncidentChange,
    IncidentUpdate,
    Severity,
    encode,
)
from plantmesh.topics import Topics
from tests.support.kafka import consume, kafka_options, partitions_of, read_all
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

MILLS = ("cnc_mill", "vibration-instability")
BEARINGS = ("cnc_mill", "bearing-overtemperature")
REGISTRY = """\
plants:
  plant-a:
    machines:
      mill-01: {class: cnc_mill, attributes: {firmware: "2.1"}}
      mill-02: {class: cnc_mill, attributes: {firmware: "2.1"}}
      press-01: hydraulic_press
  plant-b:
    machines: {mill-01: {class: cnc_mill, attributes: {firmware: "2.1"}}}
  plant-c:
    machines:
      mill-02: {class: cnc_mill, attributes: {firmware: "2.1"}}
      mill-03: {class: cnc_mill, attributes: {firmware: "2.3"}}  # stays quiet
"""


@pytest.fixture
def config(tmp_path: Path, namespace: str, kafka_bootstrap: str) -> Path:
    """Small intervals: incidents close 1 s after their last member cleared."""
    policy = {
        "version": "test",
        "default": {"min_plants": 2, "min_machines": 2, "window_s": 600, "hold_s": 1.0},
        "issue_types": {"comms-loss": None},
    }
    (tmp_path / "correlation.yaml").write_text(yaml.safe_dump(policy))
    (tmp_path / "registry.yaml").write_text(REGISTRY)
    config = {
        "namespace": namespace,
        "kafka": {"bootstrap": kafka_bootstrap},
        "group_id": f"{namespace}-incidents",
        "kafka_topics": {"partitions": 3},
        "backoff": {"initial_s": 0.1, "max_s": 1},
        "correlation": "correlation.yaml",
        "registry": "registry.yaml",
        "tick_s": 0.1,
        "checkpoint_interval_s": 0.2,
    }
    path = tmp_path / "incidents.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def event(
    alert_id: str,
    where: str,
    kind: str = "raised",
    *,
    pattern: tuple[str | None, str] = MILLS,
) -> AlertEvent:
    machine_class, issue_type = pattern
    plant, machine = where.split("/")
    return AlertEvent(
        alert_id=alert_id,
        kind=AlertEventKind(kind),
        issue_type=issue_type,
        rule="test-rule",
        rule_version="abc",
        machine_class=machine_class,
        asset=AssetPath.parse(f"{plant}/area/line1/{machine}"),
        signal="vibration_rms",
        severity=Severity.HIGH,
        at=datetime.now(UTC),  # the wall clock closes incidents: event time near it
        evidence=Evidence(summary=f"{where} {kind}", condition="test"),
    )


async def send(
    producer: AIOKafkaProducer,
    namespace: str,
    *events: AlertEvent,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    for e in events:
        key = f"{e.asset.plant}/{e.asset.machine}".encode()  # as the detection keys them
        await producer.send_and_wait(
            Topics(namespace).alert_events, encode(e), key=key, headers=headers
        )


async def incident_updates(bootstrap: str, namespace: str) -> list[IncidentUpdate]:
    """Every update on incidents.events now, in each partition's order."""
    records = await read_all(bootstrap, Topics(namespace).incident_events)
    return [IncidentUpdate.model_validate_json(value) for _, value in records]


def plants_a_and_b() -> list[AlertEvent]:
    return [event("a1", "plant-a/mill-01"), event("b1", "plant-b/mill-01")]


async def wait_updates(
    bootstrap: str, namespace: str, holds: Callable[[list[IncidentUpdate]], bool], what: str
) -> list[IncidentUpdate]:
    async def check() -> list[IncidentUpdate] | None:
        updates = await incident_updates(bootstrap, namespace)
        return updates if holds(updates) else None

    found = await async_wait_for(check, 30, what, interval=0.2)
    assert found is not None
    return found


def spans(plants: int) -> Callable[[list[IncidentUpdate]], bool]:
    """Some update lists `plants` plants."""
    return lambda updates: any(len(u.plants) >= plants for u in updates)


def opened(updates: list[IncidentUpdate]) -> list[IncidentUpdate]:
    return [u for u in updates if u.change is IncidentChange.OPENED]


def assert_consistent(updates: list[IncidentUpdate]) -> None:
    """One OPENED per incident; a version published twice is the same update both times."""
    by_version: dict[tuple[str, int], IncidentUpdate] = {}
    for update in updates:
        seen = by_version.setdefault((update.incident_id, update.version), update)
        assert seen == update, f"conflicting updates of {update.incident_id} v{update.version}"
    ids = [u.incident_id for u in opened(updates)]
    assert len(ids) == len(set(ids)), f"an incident opened twice: {ids}"


@asynccontextmanager
async def running(config: Path) -> AsyncIterator[IncidentStage]:
    stage = IncidentStage(load_incidents_config(config))
    task = asyncio.create_task(stage.run(), name="test.incidents")
    try:

        async def assigned() -> bool:
            if task.done():
                task.result()  # its error, if it failed
            return stage.rekey.assigned.is_set() and stage.correlate.assigned.is_set()

        await async_wait_for(assigned, 30, "both loops hold partitions")
        yield stage
    finally:
        stage.stop()
        await task


async def test_three_plants_make_one_incident_that_closes_and_decoys_make_none(
    config: Path, namespace: str, kafka_bootstrap: str, producer: AIOKafkaProducer
) -> None:
    async with running(config) as stage:
        transition = [(CONTRACT_HEADER, ALARM_TRANSITION_CONTRACT.encode())]
        # A valid raise in plant-c, but on the alarm service's record: with plant-a's two
        # machines it would open the incident if it were taken for an alert event.
        await send(producer, namespace, event("decoy-t", "plant-c/mill-03"), headers=transition)
        await send(
            producer,
            namespace,
            event("decoy-issue", "plant-c/mill-03", pattern=BEARINGS),
            event("decoy-class", "plant-c/press-01", pattern=("hydraulic_press", MILLS[1])),
            event("decoy-none", "plant-c/mill-02", pattern=(None, MILLS[1])),
            *(
                event(f"comms-{p}", f"plant-{p}/mill-01", pattern=("cnc_mill", "comms-loss"))
                for p in "abc"
            ),
            event("a1", "plant-a/mill-01"),
            event("a2", "plant-a/mill-02"),  # two machines of one plant: no incident yet
        )
        stats = stage.stats
        await async_wait_for(
            lambda: _now(stats.correlated == 4 and stats.uncorrelated == 3),
            30,
            "the decoys and plant-a correlated",
        )
        assert (stats.transitions, stats.unclassed) == (1, 1)
        await send(producer, namespace, event("b1", "plant-b/mill-01"))
        await wait_updates(kafka_bootstrap, namespace, spans(2), "the incident opened")
        await send(producer, namespace, event("c1", "plant-c/mill-02"))
        await wait_updates(kafka_bootstrap, namespace, spans(3), "plant-c joined")
        clears = [("a1", "plant-a/mill-01"), ("a2", "plant-a/mill-02"), ("b1", "plant-b/mill-01")]
        await send(
            producer,
            namespace,
            *(event(a, w, "cleared") for a, w in [*clears, ("c1", "plant-c/mill-02")]),
        )
        await wait_updates(
            kafka_bootstrap,
            namespace,
            lambda us: any(u.change is IncidentChange.CLOSED for u in us),
            "the incident closed after its hold",
        )

    updates = await incident_updates(kafka_bootstrap, namespace)
    assert {u.incident_id for u in updates} == {updates[0].incident_id}
    for record in await consume(kafka_bootstrap, Topics(namespace).incident_events, len(updates)):
        assert record.key == updates[0].incident_id.encode()
        assert (CONTRACT_HEADER, INCIDENT_CONTRACT.encode()) in record.headers
    assert [u.version for u in updates] == list(range(1, len(updates) + 1))
    changes = [u.change.value for u in updates]
    assert changes == ["opened", "joined", *["member_cleared"] * 4, "closed"]
    [first] = opened(updates)
    assert first.member is not None
    assert (first.member.plant, first.member.machine) == ("plant-b", "mill-01")
    assert [m.alert_id for m in first.members] == ["a1", "a2", "b1"]
    assert (first.machine_class, first.issue_type) == MILLS
    last = updates[-1]
    assert last.plants == ["plant-a", "plant-b", "plant-c"]
    assert last.closed_at is not None
    assert last.explanation["common"] == {"firmware": "2.1"}  # from the registry
    assert last.explanation["distinguishing"] == ["firmware"]  # plant-c mill-03 has 2.3
    rekeyed = await read_all(kafka_bootstrap, Topics(namespace).alerts_by_class)
    classes = {"/".join(p).encode() for p in (MILLS, BEARINGS, ("hydraulic_press", MILLS[1]))}
    assert {k for k, _ in rekeyed} == classes


async def test_a_clean_restart_continues_the_incident(
    config: Path, namespace: str, kafka_bootstrap: str, producer: AIOKafkaProducer
) -> None:
    async with running(config):
        await send(producer, namespace, *plants_a_and_b())
        await wait_updates(kafka_bootstrap, namespace, spans(2), "the incident opened")
    async with running(config) as again:
        assert again.stats.restored >= 1
        await send(producer, namespace, event("c1", "plant-c/mill-02"))
        updates = await wait_updates(kafka_bootstrap, namespace, spans(3), "plant-c joined")
    assert [(u.change.value, u.version) for u in updates] == [("opened", 1), ("joined", 2)]
    assert updates[0].incident_id == updates[1].incident_id
    assert updates[1].new_plant


def second_deployment(config: Path, group_id: str) -> Path:
    fresh = yaml.safe_load(config.read_text())
    fresh.update(group_id=group_id, start_from="latest")
    second = config.with_name("second.yaml")
    second.write_text(yaml.safe_dump(fresh))
    return second


async def test_a_new_group_starting_latest_takes_in_nothing_an_earlier_group_left(
    config: Path, namespace: str, kafka_bootstrap: str, producer: AIOKafkaProducer
) -> None:
    """Two deployments on one Kafka (two demo runs): the second, `start_from: latest`, neither
    reopens the first one's incident from alerts.by_class nor counts its members."""
    async with running(config):
        await send(producer, namespace, *plants_a_and_b())
        await wait_updates(kafka_bootstrap, namespace, spans(2), "the first group's incident")
    async with running(second_deployment(config, f"{namespace}-second")):
        await send(
            producer, namespace, event("c1", "plant-c/mill-02"), event("d1", "plant-d/mill-01")
        )
        updates = await wait_updates(
            kafka_bootstrap, namespace, lambda u: len(u) >= 2, "a second incident"
        )
    members = {frozenset(m.alert_id for m in u.members) for u in opened(updates)}
    assert members == {frozenset({"a1", "b1"}), frozenset({"c1", "d1"})}  # none shared
    assert len(updates) == 2


async def test_records_that_are_not_alert_events_are_skipped(
    config: Path,
    namespace: str,
    kafka_bootstrap: str,
    producer: AIOKafkaProducer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="alerting.incidents")
    topics = Topics(namespace)
    async with running(config) as stage:
        key = b"plant-a/mill-01"
        await producer.send_and_wait(topics.alert_events, b"{not json", key=key)
        await producer.send_and_wait(topics.alert_events, b'{"alert_id": 7}', key=key)
        await producer.send_and_wait(topics.alerts_by_class, b"", key=b"cnc_mill/" + key)
        await send(producer, namespace, *plants_a_and_b())
        await wait_updates(kafka_bootstrap, namespace, spans(2), "the incident opened")
        await async_wait_for(
            lambda: _now(sum(stage.stats.undecodable.values()) == 3), 10, "3 skipped"
        )
        assert stage.stats.undecodable == {"malformed_json": 2, "schema_mismatch": 1}
    assert "skipping a record that is not an alert event (malformed_json)" in caplog.text
    assert "skipping a record that is not an alert event (schema_mismatch)" in caplog.text


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
                lambda: _now(first.correlate.partitions and second.correlate.partitions),
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


async def _now(value: object) -> object:
    return value
