"""Escalation on a timeline with a clock the test moves (the way Alertmanager's acceptance tests
read): raise at t, expect each level told at its deadline, an acknowledgement to stop the climb,
an overdue resolution to climb again, hidden alarms not to escalate, and the all-clear to reach
everyone who was told. The same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.lifecycle.machine import Action
from alerting.lifecycle.policies import EscalationConfig
from alerting.lifecycle.states import Shelving
from alerting.records.database import open_database
from alerting.records.queries import deliveries_of, get_alarm, trail_of
from alerting.records.store import AlarmStore
from tests.support.alarms import Clock, alert_event, comms_loss_event

pytestmark = pytest.mark.integration


def _config(repeat: int = 1) -> EscalationConfig:
    hook = [{"type": "webhook", "url": "http://127.0.0.1:9/hook"}]
    return EscalationConfig.model_validate(
        {
            "version": "test",
            "policies": [
                {
                    "name": "instability",
                    "issue_types": ["vibration-instability"],
                    "levels": [
                        {"roles": ["operator"], "ack_within_s": 60},
                        {"roles": ["line-maintenance"], "ack_within_s": 120},
                        {"roles": ["plant-lead"], "ack_within_s": 300},
                    ],
                    "repeat": repeat,
                    "resolve_within_s": 600,
                }
            ],
            "contacts": [
                {"plant": "plant-a", "role": "operator", "name": "ops-a", "channels": hook},
                {
                    "plant": "plant-a",
                    "role": "line-maintenance",
                    "name": "maint-a",
                    "channels": [{"type": "email", "to": ["maint-a@example.com"]}],
                },
                {
                    "plant": "*",
                    "role": "plant-lead",
                    "name": "leads",
                    "channels": [{"type": "slack", "url": "http://127.0.0.1:9/slack"}],
                },
            ],
        }
    )


@pytest.fixture
def store(engine: AsyncEngine, clock: Clock) -> AlarmStore:
    return AlarmStore(engine, clock=clock, escalation=_config())


async def _told(store: AlarmStore, alarm_id: str) -> list[tuple[str, int | None, str]]:
    return [(d.kind, d.level, d.contact) for d in await deliveries_of(store.engine, alarm_id)]


async def _at(store: AlarmStore, clock: Clock, t: float) -> list[str]:
    """Move the clock to t seconds after the start and fire what is due."""
    clock.now = clock.start + timedelta(seconds=t)
    return [f"{c.action} {c.text}" for c in await store.fire_due()]


async def test_levels_are_told_at_their_deadlines_until_acknowledged(
    store: AlarmStore, clock: Clock
) -> None:
    await store.record(alert_event("a1"))
    assert await _told(store, "a1") == [("raised", 1, "ops-a")]
    assert await _at(store, clock, 59.9) == []
    assert await _at(store, clock, 60) == ["escalate level 2"]
    assert await _told(store, "a1") == [("raised", 1, "ops-a"), ("escalated", 2, "maint-a")]
    assert await _at(store, clock, 100) == []
    await store.act("a1", Action.ACKNOWLEDGE, "user:maint-a")
    assert await _at(store, clock, 180) == []  # level 2's deadline passed: it had answered
    # Acknowledged at 100, not resolved within 600 s: the next level is told.
    assert await _at(store, clock, 699) == []
    assert await _at(store, clock, 700) == ["re_escalate level 3"]
    assert (await _told(store, "a1"))[-1] == ("re_escalated", 3, "leads")
    await store.act("a1", Action.RESOLVE, "user:lead-a", text="bearing replaced")
    resolved = [t for t in await _told(store, "a1") if t[0] == "resolved"]
    assert sorted(resolved) == [
        ("resolved", None, "leads"),
        ("resolved", None, "maint-a"),
        ("resolved", None, "ops-a"),
    ]
    assert await _at(store, clock, 5000) == []


async def test_the_policy_runs_out_and_repeats_as_configured(
    engine: AsyncEngine, clock: Clock
) -> None:
    store = AlarmStore(engine, clock=clock, escalation=_config(repeat=2))
    await store.record(alert_event("a1"))
    fired = []
    for t in (60, 180, 480, 540, 660, 960, 5000):
        fired += await _at(store, clock, t)
    assert fired == [
        "escalate level 2",
        "escalate level 3",
        "escalate level 1, round 2",
        "escalate level 2, round 2",
        "escalate level 3, round 2",
    ]


async def test_hidden_alarms_do_not_escalate_and_are_told_again_when_shown(
    store: AlarmStore, clock: Clock
) -> None:
    await store.record(alert_event("a1"))
    await _at(store, clock, 10)
    await store.act("a1", Action.SHELVE, "user:ops-a", shelving=Shelving.ONE_SHOT, text="known")
    assert await _at(store, clock, 600) == []
    await store.act("a1", Action.UNSHELVE, "user:ops-a")
    assert (await _told(store, "a1"))[-1] == ("shown", 1, "ops-a")
    assert await _at(store, clock, 659) == []
    assert await _at(store, clock, 660) == ["escalate level 2"]


async def test_resolved_reaches_everyone_told_even_when_suppressed_later(
    store: AlarmStore, clock: Clock
) -> None:
    await store.record(alert_event("a1"))
    await _at(store, clock, 60)
    await store.act("a1", Action.REMOVE_FROM_SERVICE, "user:lead", text="sensor swap")
    await store.record(alert_event("a1", "cleared", at=90))
    await store.act("a1", Action.ACKNOWLEDGE, "user:ops-a")
    told = await _told(store, "a1")
    assert sorted(t for t in told if t[0] == "resolved") == [
        ("resolved", None, "maint-a"),
        ("resolved", None, "ops-a"),
    ]
    actions = [r.action for r in await trail_of(store.engine, "a1")]
    assert actions == ["raise", "escalate", "remove_from_service", "clear", "acknowledge"]


async def test_an_alarm_without_a_policy_notifies_nobody(store: AlarmStore) -> None:
    event = alert_event("a1").model_copy(update={"issue_type": "frozen-sensor"})
    await store.record(event)
    assert await _told(store, "a1") == []


async def test_two_services_escalate_each_alarm_once(
    database_url: str, engine: AsyncEngine, clock: Clock
) -> None:
    config = _config()
    store = AlarmStore(engine, clock=clock, escalation=config)
    for n in range(25):
        await store.record(alert_event(f"a{n}", machine=f"mill-{n:02d}"))
    clock.advance(60)
    other_engine = open_database(database_url)
    try:
        other = AlarmStore(other_engine, clock=clock, escalation=config)
        fired = await asyncio.gather(store.fire_due(), other.fire_due())
    finally:
        await other_engine.dispose()
    assert sum(len(f) for f in fired) == 25
    for n in range(25):
        assert [t[:2] for t in await _told(store, f"a{n}")] == [("raised", 1), ("escalated", 2)]


async def test_a_gateways_comms_loss_suppresses_its_machines_alarms_until_it_is_back(
    store: AlarmStore, clock: Clock
) -> None:
    await store.record(alert_event("m1", machine="mill-01", gateway="gw-1"))
    await store.record(alert_event("other", machine="mill-09", gateway="gw-2"))
    made = await store.record(comms_loss_event("gw", gateway="gw-1"))
    assert [(t.alarm_id, t.action, t.hidden) for t in made] == [
        ("gw", "raise", False),
        ("m1", "suppress", True),
    ]
    assert made[1].actor == "suppression"
    # Born during the outage: suppressed from the start, nobody told.
    await store.record(alert_event("m2", machine="mill-02", gateway="gw-1"))
    assert await _told(store, "m2") == []
    assert (await get_alarm(store.engine, "m2")).suppressed_by.startswith("comms-loss of gateway")
    assert await _at(store, clock, 60) == ["escalate level 2"]  # "other" only: m1 is suppressed
    assert await _told(store, "m1") == [("raised", 1, "ops-a")]
    # The gateway is back: its machines' alarms show again and their level is told again.
    clock.advance(10)
    back = await store.record(comms_loss_event("gw", "cleared", gateway="gw-1"))
    assert sorted((t.alarm_id, t.action) for t in back[1:]) == [
        ("m1", "unsuppress"),
        ("m2", "unsuppress"),
    ]
    assert (await _told(store, "m2"))[-1] == ("shown", 1, "ops-a")
    assert (await _told(store, "other"))[-1][:2] == ("escalated", 2)
