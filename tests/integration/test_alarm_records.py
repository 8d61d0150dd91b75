"""Alarms in the database, the same tests on SQLite and on the local PostgreSQL: migrations,
the append-only trail, the detection's events recorded once, people's actions and refusals."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.lifecycle.machine import Action, LifecycleError, Policy
from alerting.lifecycle.states import Shelving
from alerting.records import notes
from alerting.records.database import DatabaseUrlError, async_url, open_database, shown
from alerting.records.migrate import current, downgrade, head, upgrade
from alerting.records.queries import AlarmNotFoundError, get_alarm, trail_of
from alerting.records.schema import alarm_timers, alarm_trail, alarms, metadata
from alerting.records.store import AlarmStore
from plantmesh.contracts import AlarmState
from tests.support.alarms import Clock, alert_event

pytestmark = pytest.mark.integration


@pytest.fixture
def store(engine: AsyncEngine, clock: Clock) -> AlarmStore:
    return AlarmStore(engine, clock=clock)


async def _trail_actions(store: AlarmStore, alarm_id: str) -> list[tuple[str, str, str | None]]:
    return [(r.action, r.actor, r.to_state) for r in await trail_of(store.engine, alarm_id)]


async def test_migrations_make_exactly_the_schema_the_code_uses(engine: AsyncEngine) -> None:
    assert await current(engine) == head()

    def differences(sync: object) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(sync), metadata))  # type: ignore[arg-type]

    async with engine.connect() as conn:
        assert await conn.run_sync(differences) == []
    await downgrade(engine, "base")
    assert await current(engine) is None
    await upgrade(engine)
    assert await current(engine) == head()


async def test_the_trail_is_append_only_in_the_database_itself(store: AlarmStore) -> None:
    await store.record(alert_event("a1"))
    for statement in (
        update(alarm_trail).values(actor="someone else"),
        delete(alarm_trail),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with store.engine.begin() as conn:
                await conn.execute(statement)
    assert await _trail_actions(store, "a1") == [("raise", "detection", "active_unacknowledged")]


async def test_a_full_occurrence_and_a_new_one_for_the_same_key(
    store: AlarmStore, clock: Clock
) -> None:
    [raised] = await store.record(alert_event("a1"))
    assert (raised.from_state, raised.to_state) == (None, AlarmState.ACTIVE_UNACKNOWLEDGED)
    clock.advance(30)
    await store.act("a1", Action.ACKNOWLEDGE, "user:ops-a")
    clock.advance(60)
    [cleared] = await store.record(alert_event("a1", "cleared", at=90))
    assert cleared.to_state is AlarmState.NORMAL
    row = await get_alarm(store.engine, "a1")
    assert row.open_key is None
    assert (row.acknowledged_at - row.opened_at).total_seconds() == 30
    assert (row.closed_at - row.opened_at).total_seconds() == 90

    [again] = await store.record(alert_event("a2", at=200))
    assert again.alarm_id == "a2"  # the first occurrence is over: a new one opens
    assert await _trail_actions(store, "a1") == [
        ("raise", "detection", "active_unacknowledged"),
        ("acknowledge", "user:ops-a", "active_acknowledged"),
        ("clear", "detection", "normal"),
    ]


async def test_replayed_and_duplicated_events_are_recorded_once(store: AlarmStore) -> None:
    first = [alert_event("a1"), alert_event("a1", "cleared", at=5)]
    for event in first + first:
        await store.record(event)
    assert [a for a, _, _ in await _trail_actions(store, "a1")] == ["raise", "clear"]
    # Raised again before anybody acknowledged: the same occurrence, active again.
    [again] = await store.record(alert_event("a2", at=10))
    assert (again.alarm_id, again.to_state) == ("a1", AlarmState.ACTIVE_UNACKNOWLEDGED)
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(alarms))).scalar() == 1


async def test_two_writers_record_one_event_once(database_url: str, store: AlarmStore) -> None:
    other_engine = open_database(database_url)
    try:
        other = AlarmStore(other_engine)
        events = [alert_event(f"a{n}", machine=f"mill-{n:02d}") for n in range(20)]
        await asyncio.gather(*(s.record(e) for e in events for s in (store, other)))
    finally:
        await other_engine.dispose()
    async with store.engine.connect() as conn:
        trail = (await conn.execute(select(func.count()).select_from(alarm_trail))).scalar()
        count = (await conn.execute(select(func.count()).select_from(alarms))).scalar()
    assert (count, trail) == (20, 20)


async def test_refused_actions_record_nothing(store: AlarmStore) -> None:
    await store.record(alert_event("a1"))
    await store.act("a1", Action.ACKNOWLEDGE, "user:ops-a")
    with pytest.raises(LifecycleError, match="already acknowledged"):
        await store.act("a1", Action.ACKNOWLEDGE, "user:ops-b")
    with pytest.raises(AlarmNotFoundError):
        await store.act("nope", Action.ACKNOWLEDGE, "user:ops-b")
    assert len(await trail_of(store.engine, "a1")) == 2


async def test_shelving_comments_and_assignment_are_in_the_trail_with_their_actor(
    store: AlarmStore, clock: Clock
) -> None:
    await store.record(alert_event("a1"))
    until = clock.now.replace(hour=10)
    await store.act(
        "a1",
        Action.SHELVE,
        "user:lead",
        text="bearing on order",
        until=until,
        shelving=Shelving.TIMED,
    )
    row = await get_alarm(store.engine, "a1")
    assert (row.shelving, row.state) == ("timed", "active_unacknowledged")
    assert row.shelved_until.replace(tzinfo=None) == until.replace(tzinfo=None)
    await notes.comment(store, "a1", "user:tech", "grease applied, watching it")
    await notes.assign(store, "a1", "user:lead", "tech-7")
    trail = await trail_of(store.engine, "a1")
    assert [(r.action, r.actor, r.text) for r in trail[1:]] == [
        ("shelve", "user:lead", "bearing on order"),
        ("comment", "user:tech", "grease applied, watching it"),
        ("assign", "user:lead", "tech-7"),
    ]
    assert trail[1].details["hidden"] is True
    assert (await get_alarm(store.engine, "a1")).assignee == "tech-7"


def test_database_urls() -> None:
    assert async_url("postgresql://u:secret@127.0.0.1:5432/db").drivername == "postgresql+asyncpg"
    assert async_url("sqlite:////var/lib/plantmesh/alarms.db").drivername == "sqlite+aiosqlite"
    assert "secret" not in shown(async_url("postgresql://u:secret@127.0.0.1:5432/db"))
    with pytest.raises(DatabaseUrlError, match="'mysql' is not supported"):
        async_url("mysql://u@h/db")
    with pytest.raises(DatabaseUrlError, match="needs a file"):
        async_url("sqlite://")
    with pytest.raises(DatabaseUrlError, match="not a database URL"):
        async_url("::nonsense")


async def test_sqlite_runs_in_wal_mode(tmp_path: object) -> None:
    engine = open_database(f"sqlite:///{tmp_path}/x.db")
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
    finally:
        await engine.dispose()


async def test_timers_re_alarm_and_end_shelving_then_vanish_with_the_occurrence(
    engine: AsyncEngine, clock: Clock
) -> None:
    store = AlarmStore(engine, Policy(re_alarm_after=timedelta(minutes=10)), clock=clock)
    await store.record(alert_event("a1"))
    await store.act("a1", Action.ACKNOWLEDGE, "user:ops-a")
    clock.advance(599)
    assert await store.fire_due() == []
    clock.advance(1)
    [re_alarm] = await store.fire_due()
    assert (re_alarm.action, re_alarm.to_state) == (
        Action.RE_ALARM,
        AlarmState.ACTIVE_UNACKNOWLEDGED,
    )
    assert (await trail_of(store.engine, "a1"))[-1].actor == "timer"

    await store.act(
        "a1",
        Action.SHELVE,
        "user:lead",
        shelving=Shelving.TIMED,
        until=clock.now + timedelta(hours=1),
        text="vendor on site",
    )
    clock.advance(3600)
    [unshelved] = await store.fire_due()
    assert unshelved.action == Action.SHELF_EXPIRED
    assert (await get_alarm(store.engine, "a1")).shelving is None

    await store.act("a1", Action.ACKNOWLEDGE, "user:ops-a")  # sets a new re-alarm
    await store.record(alert_event("a1", "cleared", at=7000))
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(alarm_timers))).scalar() == 0
    clock.advance(3600)
    assert await store.fire_due() == []


async def test_two_services_fire_each_due_timer_once(
    database_url: str, engine: AsyncEngine, clock: Clock
) -> None:
    policy = Policy(re_alarm_after=timedelta(minutes=1))
    store = AlarmStore(engine, policy, clock=clock)
    for n in range(30):
        await store.record(alert_event(f"a{n}", machine=f"mill-{n:02d}"))
        await store.act(f"a{n}", Action.ACKNOWLEDGE, "user:ops-a")
    clock.advance(61)
    other_engine = open_database(database_url)
    try:
        other = AlarmStore(other_engine, policy, clock=clock)
        fired = await asyncio.gather(store.fire_due(limit=50), other.fire_due(limit=50))
    finally:
        await other_engine.dispose()
    assert sum(len(f) for f in fired) == 30
    async with engine.connect() as conn:
        query = (
            select(func.count()).select_from(alarm_trail).where(alarm_trail.c.action == "re_alarm")
        )
        assert (await conn.execute(query)).scalar() == 30


def test_db_command_migrates_and_reports_the_revision(database_url: str) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "alerting", "db", *args, "--url", database_url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    before = cli("current")
    assert (before.returncode, before.stdout.strip()) == (
        1,
        f"database not migrated, code {head()}",
    )
    upgraded = cli("upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"at revision {head()}" in upgraded.stdout
    assert "plantmesh:" not in upgraded.stdout or "***" in upgraded.stdout  # no password shown
    assert cli("current").returncode == 0
    bad = subprocess.run(
        [sys.executable, "-m", "alerting", "db", "current", "--url", "mysql://x@y/z"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "not supported" in bad.stderr
