"""What the browser tests record: alerts with real-looking evidence (points and a limit, so the
chart has something to draw) and a network incident made by the correlator from member alerts,
as the alarm service would record them."""

from __future__ import annotations

from datetime import timedelta

from alerting.incidents.correlator import Correlator
from alerting.incidents.policy import Correlation, CorrelationConfig
from alerting.incidents.updates import to_update
from alerting.lifecycle.machine import Action
from alerting.lifecycle.policies import EscalationConfig
from alerting.lifecycle.states import Shelving
from alerting.records.incidents import IncidentRecorder
from alerting.records.store import AlarmStore
from plantmesh.contracts import AlertEvent, Evidence, EvidencePoint
from plantmesh.fleet import Fleet
from tests.support.alarms import T0, Clock, alert_event

TERMS = Correlation(min_plants=2, min_machines=2, window_s=1800, hold_s=60)
CORRELATION = CorrelationConfig(version="t", default=TERMS)


def with_evidence(event: AlertEvent) -> AlertEvent:
    """The event with a threshold rule's evidence: 30 points climbing through a limit of 7.1."""
    points = [
        EvidencePoint(ts=T0 - timedelta(seconds=30 - i), value=round(4.0 + 0.15 * i, 3))
        for i in range(30)
    ]
    evidence = Evidence(
        summary=f"{event.signal} above 7.1 mm/s for 10 s (max 8.35)",
        condition="value > 7.1 for >= 10 s",
        points=points,
        parameters={"threshold": 7.1, "direction": "above", "deadband": 0.3, "max": 8.35},
    )
    return event.model_copy(update={"evidence": evidence})


def alert(
    alert_id: str, plant: str = "plant-a", machine: str = "mill-01", **kw: object
) -> AlertEvent:
    return with_evidence(alert_event(alert_id, plant=plant, machine=machine, **kw))  # type: ignore[arg-type]


async def network_incident(store: AlarmStore) -> str:
    """Member alerts in plant-a and plant-b, correlated into one network incident: its id."""
    recorder, correlator = IncidentRecorder(store), Correlator(CORRELATION)
    found = ""
    for event in (
        alert("na1", plant="plant-a", machine="mill-03", at=0),
        alert("nb1", plant="plant-b", machine="mill-01", at=180),
    ):
        await store.record(event)
        for change in correlator.on_event(event):
            update = to_update(change, Fleet([]), TERMS)
            await recorder.apply(update)
            found = update.incident_id
    assert found, "the correlator opened no incident"
    return found


ESCALATION = {
    "version": "t",
    "policies": [
        {
            "name": "instability",
            "levels": [
                {"roles": ["operator"], "ack_within_s": 15},
                {"roles": ["maintenance"], "ack_within_s": 30},
            ],
        }
    ],
    "contacts": [
        {
            "plant": "*",
            "role": role,
            "name": role,
            "channels": [{"type": "webhook", "url": "http://127.0.0.1:9/hook"}],
        }
        for role in ("operator", "maintenance")
    ],
}


async def three_habits(store: AlarmStore) -> None:
    """The demo's responders on a hand-moved clock: plant-b acknowledges after 3 s, plant-a
    only after its level 2 was told (27 s), plant-c shelves after 5 s."""
    store.escalation = EscalationConfig.model_validate(ESCALATION)
    clock = store.clock
    assert isinstance(clock, Clock)
    for plant in ("plant-a", "plant-b", "plant-c"):
        await store.record(alert(f"{plant[-1]}1", plant=plant))
    clock.advance(3)
    await store.act("b1", Action.ACKNOWLEDGE, "user:maint-b")
    clock.advance(2)
    until = clock() + timedelta(hours=1)
    await store.act("c1", Action.SHELVE, "user:ops-c", shelving=Shelving.TIMED, until=until)
    clock.advance(11)
    await store.fire_due()  # plant-a's level 2
    clock.advance(11)
    await store.act("a1", Action.ACKNOWLEDGE, "user:ops-a")
