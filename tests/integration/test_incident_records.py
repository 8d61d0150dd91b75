"""Network incidents in the alarm database, on a timeline with a hand-moved clock: the
correlator's updates (from real member alerts) raise one alarm per incident; headquarters is
told once when it opens and again only when another plant joins, never once per member alert;
the incident escalates on its own path; member alarms and the incident link both ways; replays
change nothing; closing clears it and the all-clear reaches everyone told. SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.catalogue import load_catalogue
from alerting.incidents.alarm import INCIDENT_RULE, NETWORK_PLANT
from alerting.incidents.correlator import Correlator
from alerting.incidents.policy import Correlation, CorrelationConfig
from alerting.incidents.updates import to_update
from alerting.lifecycle.machine import Action
from alerting.lifecycle.policies import EscalationConfig
from alerting.notify.worker import DeliveryWorker
from alerting.records.incident_queries import incidents_of_alarm, member_alarms
from alerting.records.incidents import IncidentRecorder
from alerting.records.queries import get_alarm, trail_of
from alerting.records.schema import incidents
from alerting.records.store import AlarmStore
from plantmesh.contracts import AlertEvent, IncidentUpdate
from plantmesh.fleet import Fleet
from tests.support.alarms import Clock, alert_event
from tests.support.receivers import HttpReceiver

pytestmark = pytest.mark.integration

TERMS = Correlation(min_plants=2, min_machines=2, window_s=1800, hold_s=60)
CORRELATION = CorrelationConfig(version="t", default=TERMS)


@pytest.fixture
def config(http: HttpReceiver) -> EscalationConfig:
    def hook(name: str) -> list[dict[str, str]]:
        return [{"type": "webhook", "url": f"{http.url}/{name}"}]

    return EscalationConfig.model_validate(
        {
            "version": "t",
            "policies": [
                {"name": "local", "levels": [{"roles": ["operator"], "ack_within_s": 600}]},
                {
                    "name": "network",
                    "scope": "network",
                    "levels": [
                        {"roles": ["hq-reliability"], "ack_within_s": 300},
                        {"roles": ["operations-director"], "ack_within_s": 600},
                    ],
                },
            ],
            "contacts": [
                {"plant": "*", "role": "operator", "name": "ops", "channels": hook("ops")},
                {"plant": "*", "role": "hq-reliability", "name": "hq", "channels": hook("hq")},
                {"plant": NETWORK_PLANT, "role": "operations-director", "name": "director",
                 "channels": hook("director")},
            ],
        }
    )  # fmt: skip


@pytest.fixture
async def worker(
    engine: AsyncEngine, clock: Clock, config: EscalationConfig
) -> AsyncIterator[DeliveryWorker]:
    made = DeliveryWorker(engine, config, load_catalogue(), clock=clock)
    yield made
    await made.close()


class Network:
    """Member alerts recorded as alarms and fed to the correlator, whose updates are applied."""

    def __init__(self, store: AlarmStore) -> None:
        self.store = store
        self.recorder = IncidentRecorder(store)
        self.correlator = Correlator(CORRELATION)
        self.updates: list[IncidentUpdate] = []

    async def alert(self, event: AlertEvent) -> None:
        await self.store.record(event)
        for change in self.correlator.on_event(event):
            await self.apply(to_update(change, Fleet([]), TERMS))

    async def advance(self) -> None:
        for change in self.correlator.advance(self.store.clock()):
            await self.apply(to_update(change, Fleet([]), TERMS))

    async def apply(self, update: IncidentUpdate) -> None:
        self.updates.append(update)
        await self.recorder.apply(update)


def kinds(http: HttpReceiver, path: str) -> list[str]:
    return [json.loads(r.body)["kind"] for r in http.answered(path)]


async def drain(worker: DeliveryWorker) -> None:
    while await worker.run_once():
        pass


async def test_one_incident_told_once_and_again_per_new_plant(
    engine: AsyncEngine,
    clock: Clock,
    config: EscalationConfig,
    worker: DeliveryWorker,
    http: HttpReceiver,
) -> None:
    store = AlarmStore(engine, clock=clock, escalation=config)
    network = Network(store)
    await network.alert(alert_event("a1", plant="plant-a", machine="mill-03", at=0))
    await network.alert(alert_event("b1", plant="plant-b", machine="mill-01", at=180))
    await network.alert(alert_event("c1", plant="plant-c", machine="mill-02", at=360))
    await network.alert(alert_event("c2", plant="plant-c", machine="mill-03", at=400))
    await drain(worker)
    assert sorted(kinds(http, "/hq")) == ["raised", "updated"]  # opened, plant-c; not per member
    assert len(http.answered("/ops")) == 4  # every member alarm keeps its local escalation
    async with engine.connect() as conn:
        [incident] = (await conn.execute(select(incidents))).all()
    assert incident.plants == ["plant-a", "plant-b", "plant-c"]
    assert "3 of 3 plants" in incident.explanation["text"]
    alarm = await get_alarm(engine, incident.alarm_id)
    assert (alarm.rule, alarm.plant, alarm.active) == (INCIDENT_RULE, NETWORK_PLANT, True)
    assert "plant-c" in json.loads(http.answered("/hq")[1].body)["summary"]
    for member in ("a1", "b1", "c1", "c2"):
        assert await incidents_of_alarm(engine, member) == [incident.id]
    assert await incidents_of_alarm(engine, incident.alarm_id) == [incident.id]
    assert [m.id for m in await member_alarms(engine, incident)] == ["a1", "b1", "c1", "c2"]
    actions = [e.action for e in await trail_of(engine, incident.alarm_id)]
    assert actions == ["raise", "update", "update"]

    clock.advance(301)  # nobody at headquarters acknowledged: its own next level is told
    await store.fire_due()
    await drain(worker)
    assert kinds(http, "/director") == ["escalated"]

    told = len(http.requests)
    for update in list(network.updates):  # a replay, or a restarted stage's duplicates
        await network.recorder.apply(update)
    await drain(worker)
    assert len(http.requests) == told
    assert [e.action for e in await trail_of(engine, incident.alarm_id)] == [
        "raise", "update", "update", "escalate"
    ]  # fmt: skip


async def test_closing_clears_it_and_the_all_clear_reaches_everyone_told(
    engine: AsyncEngine,
    clock: Clock,
    config: EscalationConfig,
    worker: DeliveryWorker,
    http: HttpReceiver,
) -> None:
    store = AlarmStore(engine, clock=clock, escalation=config)
    network = Network(store)
    await network.alert(alert_event("a1", plant="plant-a", machine="mill-03", at=0))
    await network.alert(alert_event("b1", plant="plant-b", machine="mill-01", at=60))
    await network.alert(alert_event("a1", "cleared", plant="plant-a", machine="mill-03", at=90))
    await network.alert(alert_event("b1", "cleared", plant="plant-b", machine="mill-01", at=120))
    clock.now = network.updates[-1].at
    clock.advance(61)
    await network.advance()
    assert [u.change.value for u in network.updates] == [
        "opened", "member_cleared", "member_cleared", "closed"
    ]  # fmt: skip
    async with engine.connect() as conn:
        [incident] = (await conn.execute(select(incidents))).all()
    assert not incident.open
    alarm = await get_alarm(engine, incident.alarm_id)
    assert alarm.state == "returned_unacknowledged"
    await store.act(incident.alarm_id, Action.ACKNOWLEDGE, "user:hq")
    await drain(worker)
    assert sorted(kinds(http, "/hq")) == ["raised", "resolved"]
