"""Planned maintenance of a machine: suppression by design for a time. Starting a window
suppresses the machine's open alarms, alarms raised during it are born suppressed, and when
it ends (its time is up, or someone ends it early) they are shown again. An alarm already
suppressed for another reason (a gateway's comms loss) keeps that reason."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update

from alerting.lifecycle.machine import Action, Request
from alerting.records.schema import alarms, maintenance_windows
from alerting.records.store import AlarmStore
from alerting.records.windows import Window, window_of
from plantmesh.contracts import AlarmTransition

ACTOR = "maintenance"


class WindowError(ValueError):
    pass


async def start(
    store: AlarmStore, plant: str, machine: str, until: datetime, reason: str, actor: str
) -> tuple[Window, list[AlarmTransition]]:
    now = store.clock()
    if until <= now:
        raise WindowError("the window's end has passed")
    if until - now > store.policy.max_shelve * 3:
        raise WindowError(f"a maintenance window lasts at most {store.policy.max_shelve * 3}")
    async with store.engine.begin() as conn:
        made = await conn.execute(
            insert(maintenance_windows)
            .values(
                plant=plant,
                machine=machine,
                starts_at=now,
                ends_at=until,
                reason=reason,
                actor=actor,
            )
            .returning(maintenance_windows)
        )
        window = window_of(made.one())
        query = select(alarms).where(
            alarms.c.plant == plant,
            alarms.c.machine == machine,
            alarms.c.open_key.is_not(None),
            alarms.c.suppressed_by.is_(None),
        )
        rows = (await conn.execute(query.order_by(alarms.c.id).with_for_update())).all()
        changes = [
            await store.change(
                conn, row, Request(Action.SUPPRESS, now, reason=window.why), actor, window.why
            )
            for row in rows
        ]
    done = [c for c in changes if c is not None]
    store.notify_change(done)
    return window, done


async def end(store: AlarmStore, window_id: int, actor: str) -> list[AlarmTransition]:
    """End a window (early, or because its time is up); [] when it had ended already."""
    now = store.clock()
    async with store.engine.begin() as conn:
        claimed = await conn.execute(
            update(maintenance_windows)
            .where(maintenance_windows.c.id == window_id, maintenance_windows.c.ended_at.is_(None))
            .values(ended_at=now)
            .returning(maintenance_windows)
        )
        row = claimed.first()
        if row is None:
            return []
        window = window_of(row)
        query = select(alarms).where(
            alarms.c.suppressed_by == window.why, alarms.c.open_key.is_not(None)
        )
        rows = (await conn.execute(query.order_by(alarms.c.id).with_for_update())).all()
        changes = [
            await store.change(conn, r, Request(Action.UNSUPPRESS, now), actor, "maintenance over")
            for r in rows
        ]
    done = [c for c in changes if c is not None]
    store.notify_change(done)
    return done


async def end_due(store: AlarmStore) -> list[AlarmTransition]:
    """The windows whose time is up, ended (by whichever process gets there first)."""
    query = select(maintenance_windows.c.id).where(
        maintenance_windows.c.ended_at.is_(None), maintenance_windows.c.ends_at <= store.clock()
    )
    async with store.engine.connect() as conn:
        due = [r.id for r in (await conn.execute(query)).all()]
    made: list[AlarmTransition] = []
    for window_id in due:
        made += await end(store, window_id, ACTOR)
    return made


async def windows(store: AlarmStore, plants: list[str] | None) -> list[Window]:
    """Windows not ended yet, in the given plants (None: all)."""
    query = select(maintenance_windows).where(maintenance_windows.c.ended_at.is_(None))
    if plants is not None:
        query = query.where(maintenance_windows.c.plant.in_(plants))
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query.order_by(maintenance_windows.c.id))).all()
    return [window_of(r) for r in rows]


async def get_window(store: AlarmStore, window_id: int) -> Window:
    query = select(maintenance_windows).where(maintenance_windows.c.id == window_id)
    async with store.engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        raise LookupError(f"no maintenance window {window_id}")
    return window_of(row)
