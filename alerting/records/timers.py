"""Due times of an alarm, kept as rows: a timed shelving's end, a re-alarm of an acknowledgement
left standing (and the escalation levels). A restart loses none, and whoever claims a row first
fires it: the claim is the row's deletion, which only one transaction can make.

Firing locks the alarm first, as every action does (so a timer and an acknowledgement never
deadlock), with SKIP LOCKED in PostgreSQL: an alarm another process is changing is left for the
next round, and two services work through the due rows side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from alerting.lifecycle.machine import Action, Policy
from alerting.lifecycle.states import Alarm, Shelving
from alerting.records.schema import alarm_timers, aware


class TimerKind(StrEnum):
    SHELF_EXPIRED = "shelf_expired"
    RE_ALARM = "re_alarm"
    ESCALATE = "escalate"
    """The current escalation level did not acknowledge in time."""
    RE_ESCALATE = "re_escalate"
    """Acknowledged, but not resolved in the policy's time."""

    @property
    def action(self) -> Action | None:
        """The lifecycle action it fires; None for the escalation timers (no state change)."""
        return Action(self.value) if self.value in LIFECYCLE_TIMERS else None


LIFECYCLE_TIMERS = frozenset({"shelf_expired", "re_alarm"})


@dataclass(frozen=True, slots=True)
class DueTimer:
    id: int
    alarm_id: str
    kind: TimerKind
    due_at: datetime


async def set_timer(
    conn: AsyncConnection, alarm_id: str, kind: TimerKind, due_at: datetime
) -> None:
    await clear_timer(conn, alarm_id, kind)
    await conn.execute(
        insert(alarm_timers).values(alarm_id=alarm_id, kind=kind.value, due_at=due_at, details={})
    )


async def clear_timer(conn: AsyncConnection, alarm_id: str, kind: TimerKind | None = None) -> None:
    query = delete(alarm_timers).where(alarm_timers.c.alarm_id == alarm_id)
    if kind is not None:
        query = query.where(alarm_timers.c.kind == kind.value)
    await conn.execute(query)


async def follow(
    conn: AsyncConnection,
    alarm_id: str,
    before: Alarm | None,
    after: Alarm,
    now: datetime,
    policy: Policy,
) -> None:
    """Set or clear the alarm's timers for its new state."""
    if after.closed:
        await clear_timer(conn, alarm_id)
        return
    if after.shelving is Shelving.TIMED and after.shelved_until is not None:
        if before is None or before.shelved_until != after.shelved_until:
            await set_timer(conn, alarm_id, TimerKind.SHELF_EXPIRED, after.shelved_until)
    elif before is not None and before.shelving is Shelving.TIMED:
        await clear_timer(conn, alarm_id, TimerKind.SHELF_EXPIRED)
    standing = after.active and after.acknowledged and not after.resolved
    was_standing = (
        before is not None and before.active and before.acknowledged and not before.resolved
    )
    if standing and not was_standing and policy.re_alarm_after is not None:
        await set_timer(conn, alarm_id, TimerKind.RE_ALARM, now + policy.re_alarm_after)
    elif not standing and was_standing:
        await clear_timer(conn, alarm_id, TimerKind.RE_ALARM)


async def due(conn: AsyncConnection, now: datetime, limit: int) -> Sequence[DueTimer]:
    query = (
        select(alarm_timers)
        .where(alarm_timers.c.due_at <= now)
        .order_by(alarm_timers.c.due_at)
        .limit(limit)
    )
    rows = (await conn.execute(query)).all()
    return [DueTimer(r.id, r.alarm_id, TimerKind(r.kind), aware(r.due_at)) for r in rows]


async def claim(conn: AsyncConnection, timer: DueTimer) -> bool:
    """True for the one transaction that removes the row."""
    result: Any = await conn.execute(delete(alarm_timers).where(alarm_timers.c.id == timer.id))
    return bool(result.rowcount == 1)
