"""The network-incident stage in tests against a real Kafka: its configuration (a registry of
three plants' mills, a policy of two plants), alert events of a plant's machine, and reading back
what it published on incidents.events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import yaml
from aiokafka import AIOKafkaProducer

from alerting.incidents.stage import IncidentStage
from alerting.incidents.stage_config import load_incidents_config
from plantmesh.contracts import (
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
from tests.support.kafka import read_all
from tests.support.waiting import async_wait_for

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


def write_config(tmp_path: Path, namespace: str, kafka_bootstrap: str) -> Path:
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
