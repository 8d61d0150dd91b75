"""No single message stops an alerting service (real Kafka; the alarm service also on SQLite and
PostgreSQL): a barrage of poison between good messages (malformed JSON, the wrong shape,
contract-valid extremes, a message whose handling raises) leaves the detection, the alarm
service and the incident stage running; the good messages are handled as usual, the poison is
counted by reason, and the consumer groups commit to the end of every input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaProducer

from alerting.alarm_service.config import load_alarm_config
from alerting.alarm_service.service import AlarmService
from alerting.catalogue import load_catalogue
from alerting.config import AlertingConfig
from alerting.engine import Engine
from alerting.incidents.correlator import Correlator
from alerting.incidents.stage import IncidentStage
from alerting.incidents.stage_config import load_incidents_config
from alerting.records.queries import get_alarm
from alerting.records.store import AlarmStore
from alerting.service import AlertingService
from plantmesh.contracts import (
    AlertEvent,
    Evidence,
    IncidentUpdate,
    ReadingBatch,
    encode,
)
from plantmesh.topics import HEADER_MACHINE_CLASS, Topics
from tests.support.alarm_service import write_config
from tests.support.alarms import alert_event
from tests.support.kafka import read_all
from tests.support.poison import (
    Poison,
    alert_event_poison,
    batch,
    detection_poison,
    incident_update_poison,
    lag,
    reasons,
)
from tests.support.receivers import HttpReceiver, SmtpReceiver
from tests.support.threshold import BEARING_RULE
from tests.support.waiting import async_wait_for, now

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def produce(producer: AIOKafkaProducer, topics: Topics, poison: Poison) -> None:
    topic = getattr(topics, poison.topic)
    await producer.send_and_wait(topic, poison.value, key=poison.key, headers=poison.headers)


def interleaved(good: list[Any], poisons: list[Poison]) -> list[Any]:
    """Good, poison, good, poison ... then whatever is left of either."""
    mixed: list[Any] = []
    for i in range(max(len(good), len(poisons))):
        mixed += good[i : i + 1] + poisons[i : i + 1]
    return mixed


async def caught_up(
    bootstrap: str, group: str, topics: list[str], alive: asyncio.Task[None]
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        assert not alive.done(), "the service stopped"
        return await lag(bootstrap, group, topics) == 0

    return check


# --- detection ------------------------------------------------------------------------------------
def detection_config(namespace: str, bootstrap: str, tmp_path: Path) -> AlertingConfig:
    return AlertingConfig.model_validate(
        {
            "namespace": namespace,
            "kafka": {"bootstrap": bootstrap},
            "group_id": f"{namespace}-alerting",
            "alert_log": str(tmp_path / "alerts.jsonl"),
            "kafka_topics": {"partitions": 2, "replication_factor": 1},
            "rules": [BEARING_RULE],
        }
    )


class BuggyEngine(Engine):
    """Raises on the batches of gateway gw-bug: an unexpected exception for one message."""

    def process_batch(
        self, batch: ReadingBatch, machine_class: str | None = None
    ) -> list[AlertEvent]:
        if batch.gateway_id == "gw-bug":
            raise KeyError("a bug")
        return super().process_batch(batch, machine_class)


def excursion() -> list[bytes]:
    """press-01 at 95 degC from t=10 to t=25 of 40 s: raised at 15, cleared at 25."""
    made = []
    for t in range(40):
        data = batch(
            t, (T0 + timedelta(seconds=t)).isoformat(), value=95.0 if 10 <= t < 25 else 80.0
        )
        data["gateway_id"] = "gw-1"
        data["readings"][0]["asset"] = {
            "plant": "plant-a", "area": "stamping", "line": "line1", "machine": "press-01"
        }  # fmt: skip
        made.append(encode(ReadingBatch.model_validate(data)))
    return made


async def test_the_detection_skips_poison_and_decides_on_the_rest(
    kafka_bootstrap: str, namespace: str, tmp_path: Path, producer: AIOKafkaProducer
) -> None:
    config = detection_config(namespace, kafka_bootstrap, tmp_path)
    catalogue = load_catalogue(config.catalogue)

    def engine() -> Engine:
        return BuggyEngine.from_config(config.rules, catalogue, lateness_s=config.lateness_s)

    topics = Topics(namespace)
    bug = encode(ReadingBatch.model_validate(batch(1, T0.isoformat(), gateway="gw-bug")))
    poisons = detection_poison((T0 + timedelta(seconds=3)).isoformat())
    poisons += [Poison("a bug", "telemetry_normalized", bug, "internal_error")] * 2
    service = AlertingService(config, engine)
    task = asyncio.create_task(service.run(), name="test.alerting")
    try:
        await asyncio.wait_for(service.ready.wait(), 30)
        for item in interleaved(excursion(), poisons):
            if isinstance(item, Poison):
                await produce(producer, topics, item)
            else:
                await producer.send_and_wait(
                    topics.telemetry_normalized,
                    item,
                    key=b"plant-a/press-01",
                    headers=[(HEADER_MACHINE_CLASS, b"press")],
                )

        async def all_seen() -> bool:
            return service.stats.messages == 40 + len(poisons) and (
                service.stats.readings == 40 + 1  # and the 200 kB extreme
            )

        await async_wait_for(all_seen, 60, "every message handled or skipped")
        inputs = [topics.telemetry_normalized, topics.gateway_status, topics.telemetry_completeness]
        check = await caught_up(kafka_bootstrap, config.group_id, inputs, task)
        await async_wait_for(check, 60, "the detection's group to commit to the end")
        assert service.stats.skipped == reasons(poisons)
        assert service.stats.events == {"raised": 1, "cleared": 1}
        assert not task.done()
    finally:
        service.stop()
        await asyncio.wait_for(task, 30)
    alerts = [
        AlertEvent.model_validate_json(v)
        for _, v in await read_all(kafka_bootstrap, topics.alert_events)
    ]
    assert [(a.kind.value, a.at, a.asset.machine) for a in alerts] == [
        ("raised", T0 + timedelta(seconds=15), "press-01"),
        ("cleared", T0 + timedelta(seconds=25), "press-01"),
    ]


# --- the alarm service ----------------------------------------------------------------------------
@pytest.fixture
async def alarms(
    tmp_path: Path,
    namespace: str,
    kafka_bootstrap: str,
    database_url: str,
    http: HttpReceiver,
    smtp: SmtpReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[AlarmService, asyncio.Task[None]]]:
    real = AlarmStore.record

    async def record(self: AlarmStore, event: AlertEvent) -> Any:
        if event.alert_id == "boom":
            raise RuntimeError("a bug")  # an unexpected exception recording one event
        return await real(self, event)

    monkeypatch.setattr(AlarmStore, "record", record)
    extra = {"group_id": f"{namespace}-alarms", "incidents": True}
    path = write_config(
        tmp_path, namespace=namespace, kafka=kafka_bootstrap, database=database_url,
        http=http, smtp=smtp, extra=extra,
    )  # fmt: skip
    service = AlarmService(load_alarm_config(path))
    task = asyncio.create_task(service.run(), name="alarm-service")
    await asyncio.wait_for(service.ready.wait(), 60)
    yield service, task
    service.stop()
    await asyncio.wait_for(task, 60)


def opening_update() -> IncidentUpdate:
    from alerting.incidents.policy import Correlation, CorrelationConfig
    from alerting.incidents.updates import to_update
    from plantmesh.fleet import Fleet

    terms = Correlation(min_plants=2, min_machines=2, window_s=1800, hold_s=60)
    correlator = Correlator(CorrelationConfig(version="t", default=terms))
    correlator.on_event(alert_event("m1", plant="plant-a", machine="mill-07"))
    [change] = correlator.on_event(alert_event("m2", plant="plant-b", machine="mill-08"))
    return to_update(change, Fleet([]), terms)


async def test_the_alarm_service_skips_poison_and_records_the_rest(
    alarms: tuple[AlarmService, asyncio.Task[None]],
    namespace: str,
    kafka_bootstrap: str,
    producer: AIOKafkaProducer,
) -> None:
    service, task = alarms
    topics = Topics(namespace)
    big = alert_event("big", machine="mill-09").model_copy(
        update={"evidence": Evidence(summary="s" * 300_000, condition="a contract-valid extreme")}
    )
    good = [
        alert_event("a1"),
        alert_event("a2", machine="mill-02"),
        big,
        alert_event("a1", "cleared", at=30),
    ]
    update = opening_update()
    poisons = alert_event_poison(alert_event("p1", machine="mill-03"))
    poisons += incident_update_poison(update)
    poisons += [
        Poison("tombstone", "alert_events", None, "malformed_json"),
        Poison("a bug", "alert_events", encode(alert_event("boom", machine="mill-04")),
               "internal_error"),
    ]  # fmt: skip
    for item in interleaved([*good, update], poisons):
        if isinstance(item, Poison):
            await produce(producer, topics, item)
        elif isinstance(item, IncidentUpdate):
            await producer.send_and_wait(topics.incident_events, encode(item), key=b"incident")
        else:
            await producer.send_and_wait(topics.alert_events, encode(item), key=b"plant-a/mill")

    async def all_taken() -> bool:
        intake = service.intake
        return (
            intake is not None
            and sum(intake.skipped.values()) == len(poisons)
            and ((intake.recorded, intake.incident_updates) == (len(good), 1))
        )

    await async_wait_for(all_taken, 60, "every record recorded or skipped")
    check = await caught_up(
        kafka_bootstrap, f"{namespace}-alarms", [topics.alert_events, topics.incident_events], task
    )
    await async_wait_for(check, 60, "the alarm service's group to commit to the end")
    assert service.intake is not None
    assert service.intake.skipped == reasons(poisons)
    assert service.store is not None
    states = {a: (await get_alarm(service.store.engine, a)).state for a in ("a1", "a2", "big")}
    assert states == {
        "a1": "returned_unacknowledged",
        "a2": "active_unacknowledged",
        "big": "active_unacknowledged",
    }
    assert not task.done()


# --- the incident stage ---------------------------------------------------------------------------
@asynccontextmanager
async def incident_stage(path: Path) -> AsyncIterator[tuple[IncidentStage, asyncio.Task[None]]]:
    stage = IncidentStage(load_incidents_config(path))
    task = asyncio.create_task(stage.run(), name="incidents")
    try:
        await asyncio.wait_for(
            asyncio.gather(stage.rekey.assigned.wait(), stage.correlate.assigned.wait()), 60
        )
        yield stage, task
    finally:
        stage.stop()
        await asyncio.wait_for(task, 60)


def now_event(alert_id: str, plant: str, machine: str, summary: str | None = None) -> AlertEvent:
    """The wall clock closes incidents: event time near it."""
    event = alert_event(alert_id, plant=plant, machine=machine)
    evidence = event.evidence if summary is None else Evidence(summary=summary, condition="c")
    return event.model_copy(update={"at": datetime.now(UTC), "evidence": evidence})


async def test_the_incident_stage_skips_poison_and_correlates_the_rest(
    tmp_path: Path,
    namespace: str,
    kafka_bootstrap: str,
    producer: AIOKafkaProducer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = Correlator.on_event

    def on_event(self: Correlator, event: AlertEvent, arrived: datetime | None = None) -> Any:
        if event.alert_id == "boom":
            raise RuntimeError("a bug")
        return real(self, event, arrived)

    monkeypatch.setattr(Correlator, "on_event", on_event)
    policy = {
        "version": "t",
        "default": {"min_plants": 2, "min_machines": 2, "window_s": 600, "hold_s": 600},
    }
    (tmp_path / "correlation.yaml").write_text(yaml.safe_dump(policy))
    config = {
        "namespace": namespace,
        "kafka": {"bootstrap": kafka_bootstrap},
        "group_id": f"{namespace}-incidents",
        "kafka_topics": {"partitions": 2},
        "backoff": {"initial_s": 0.1, "max_s": 1},
        "correlation": "correlation.yaml",
        "tick_s": 0.1,
    }
    path = tmp_path / "incidents.yaml"
    path.write_text(yaml.safe_dump(config))
    topics = Topics(namespace)
    good = [
        now_event("a1", "plant-a", "mill-01"),
        now_event("b1", "plant-b", "mill-01"),
        now_event(
            "c1", "plant-c", "mill-01", summary="s" * 600_000
        ),  # joins; whole, twice, too large
    ]
    poisons = alert_event_poison(alert_event("p1", machine="mill-05"))
    poisons += [
        Poison(p.what, "alerts_by_class", p.value, p.reason, key=b"mill/x") for p in poisons[:4]
    ]
    poisons += [
        Poison(
            "a bug",
            "alert_events",
            encode(now_event("boom", "plant-d", "mill-01")),
            "internal_error",
        )
    ]
    async with incident_stage(path) as (stage, task):
        for item in interleaved(good, poisons):
            if isinstance(item, Poison):
                await produce(producer, topics, item)
            else:
                key = f"{item.asset.plant}/{item.asset.machine}".encode()
                await producer.send_and_wait(topics.alert_events, encode(item), key=key)

        async def incident() -> list[IncidentUpdate]:
            found = [
                IncidentUpdate.model_validate_json(v)
                for _, v in await read_all(kafka_bootstrap, topics.incident_events)
            ]
            return found if len(found) >= 2 else []

        updates = await async_wait_for(incident, 60, "the incident opened and joined")
        assert [u.change.value for u in updates] == ["opened", "joined"]
        assert [m.alert_id for m in updates[-1].members] == ["a1", "b1", "c1"]
        assert len(updates[-1].members[-1].summary) == 1000
        stats = stage.stats
        await async_wait_for(
            lambda: now(sum(stats.skipped.values()) == len(poisons)), 30, "every poison skipped"
        )
        groups = {
            f"{namespace}-incidents-rekey": [topics.alert_events],
            f"{namespace}-incidents": [topics.alerts_by_class],
        }
        for group, inputs in groups.items():
            check = await caught_up(kafka_bootstrap, group, inputs, task)
            await async_wait_for(check, 60, f"group {group} to commit to the end")
        assert stats.skipped == reasons(poisons)
        assert stats.correlator_errors == 1
        assert (stats.rekeyed, stats.correlated) == (4, 4)  # the good three and the bug
        assert not task.done()
