"""Trail entries that leave an alarm's state as it is: a comment, an assignment, news from the
correlation stage about the network incident the alarm stands for. Each is appended with its
actor like every transition, published like one, and may tell whoever was already told."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from alerting.records import escalating
from alerting.records.deliveries import DeliveryKind
from alerting.records.rows import alarm_of
from alerting.records.schema import alarms
from alerting.records.store import AlarmStore
from plantmesh.contracts import AlarmTransition


async def note(
    store: AlarmStore,
    alarm_id: str,
    action: str,
    actor: str,
    text: str | None,
    *,
    values: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
    source: str | None = None,
    tell_told: bool = False,
) -> AlarmTransition:
    """Append `action` to the alarm's trail; `values`: columns of the alarm to update with it;
    `tell_told`: notify (UPDATED) everyone who was told about the alarm so far. AlarmNotFoundError
    for an unknown id; IntegrityError when `source` was recorded already (a replay)."""
    async with store.engine.begin() as conn:
        row = await store.locked(conn, alarm_id)
        now = store.clock()
        if values:
            await conn.execute(
                update(alarms).where(alarms.c.id == alarm_id).values(**values, updated_at=now)
            )
        alarm = alarm_of(row)
        made = await store.append(
            conn, row, action, actor, alarm, alarm, now, text=text, details=details, source=source
        )
        if tell_told and store.escalation is not None:
            await escalating.tell_told(
                conn, store.escalation, row, made.seq, DeliveryKind.UPDATED, now
            )
    store.notify_change(made)
    return made


async def comment(store: AlarmStore, alarm_id: str, actor: str, text: str) -> AlarmTransition:
    return await note(store, alarm_id, "comment", actor, text)


async def assign(
    store: AlarmStore, alarm_id: str, actor: str, assignee: str | None
) -> AlarmTransition:
    async with store.engine.begin() as conn:
        row = await store.locked(conn, alarm_id)
        now = store.clock()
        await conn.execute(
            update(alarms).where(alarms.c.id == alarm_id).values(assignee=assignee, updated_at=now)
        )
        alarm = alarm_of(row)
        details = {"assignee": assignee, "previous": row.assignee}
        made = await store.append(
            conn, row, "assign", actor, alarm, alarm, now, text=assignee, details=details
        )
    store.notify_change(made)
    return made
