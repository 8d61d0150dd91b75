"""Notifications to send, one row per (alarm, trail entry, level, contact, channel): made in
the transaction of the transition that calls for them, sent by a worker that leases due rows,
then marked sent, or retried with capped backoff, or failed after the last attempt. The unique
key is what makes a restart or a second process never send one twice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import case, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alerting.lifecycle.policies import Contact
from alerting.records.schema import alarm_deliveries, aware

LEASE = timedelta(seconds=60)
"""A claimed row is not offered again for this long (a worker that died gives it back then)."""
MAX_BACKOFF_S = 300.0


class DeliveryKind(StrEnum):
    RAISED = "raised"
    ESCALATED = "escalated"
    RE_ESCALATED = "re_escalated"
    SHOWN = "shown"
    """Unshelved, unsuppressed or back in service while still unacknowledged."""
    RE_ALARMED = "re_alarmed"
    RESOLVED = "resolved"
    UPDATED = "updated"
    """News about what was told (a network incident reached another plant)."""


class Status(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    alarm_id: str
    trail_seq: int
    kind: DeliveryKind
    level: int | None
    contact: str
    channel: str
    channel_index: int
    attempts: int
    created_at: datetime


async def enqueue(
    conn: AsyncConnection,
    alarm_id: str,
    trail_seq: int,
    kind: DeliveryKind,
    level: int | None,
    contacts: Sequence[Contact],
    now: datetime,
) -> int:
    rows: dict[str, dict[str, Any]] = {}
    for contact in contacts:
        for index, channel in enumerate(contact.channels):
            key = f"{alarm_id}:{trail_seq}:{level}:{contact.name}:{index}"
            rows[key] = {
                "dedupe_key": key,
                "alarm_id": alarm_id,
                "trail_seq": trail_seq,
                "kind": kind.value,
                "level": level,
                "contact": contact.name,
                "channel": channel.type,
                "channel_index": index,
                "status": Status.PENDING.value,
                "attempts": 0,
                "due_at": now,
                "created_at": now,
            }
    if rows:
        await conn.execute(insert(alarm_deliveries), list(rows.values()))
    return len(rows)


async def notified(conn: AsyncConnection, alarm_id: str) -> set[tuple[str, int]]:
    """(contact, channel index) of every notification sent or still to send for the alarm."""
    query = select(alarm_deliveries.c.contact, alarm_deliveries.c.channel_index).where(
        alarm_deliveries.c.alarm_id == alarm_id,
        alarm_deliveries.c.status != Status.FAILED.value,
        alarm_deliveries.c.kind != DeliveryKind.RESOLVED.value,
    )
    return {(r.contact, r.channel_index) for r in (await conn.execute(query)).all()}


async def claim(
    engine: AsyncEngine,
    now: datetime,
    limit: int,
    per_contact: int | None = None,
    in_flight: Mapping[str, int] | None = None,
) -> list[Delivery]:
    """Lease the oldest due deliveries. With `per_contact`, at most that many for one contact
    less what it has `in_flight`: the deliveries behind a receiver that hangs are left for
    later, and the ones to other contacts do not wait behind them."""
    c = alarm_deliveries.c
    due = (c.status == Status.PENDING.value) & (c.due_at <= now)
    if per_contact is None:
        chosen = select(c.id).where(due).order_by(c.due_at, c.id).limit(limit)
    else:
        rank = func.row_number().over(partition_by=c.contact, order_by=(c.due_at, c.id))
        ranked = select(c.id, c.contact, c.due_at, rank.label("rank")).where(due).subquery()
        busy = {name: per_contact - n for name, n in (in_flight or {}).items() if n > 0}
        room = (
            case(busy, value=ranked.c.contact, else_=per_contact) if busy else literal(per_contact)
        )
        chosen = (
            select(ranked.c.id)
            .where(ranked.c.rank <= room)
            .order_by(ranked.c.due_at, ranked.c.id)
            .limit(limit)
        )
    query = (
        select(alarm_deliveries)
        .where(c.id.in_(chosen.scalar_subquery()), due)
        .order_by(c.due_at, c.id)
        .with_for_update(skip_locked=True)
    )
    async with engine.begin() as conn:
        rows = (await conn.execute(query)).all()
        if rows:
            await conn.execute(
                update(alarm_deliveries)
                .where(alarm_deliveries.c.id.in_([r.id for r in rows]))
                .values(due_at=now + LEASE)
            )
    return [
        Delivery(
            r.id,
            r.alarm_id,
            r.trail_seq,
            DeliveryKind(r.kind),
            r.level,
            r.contact,
            r.channel,
            r.channel_index,
            r.attempts,
            aware(r.created_at),
        )
        for r in rows
    ]


async def mark_sent(engine: AsyncEngine, delivery: Delivery, now: datetime) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(alarm_deliveries)
            .where(alarm_deliveries.c.id == delivery.id)
            .values(status=Status.SENT.value, sent_at=now, attempts=delivery.attempts + 1)
        )


async def mark_failed(
    engine: AsyncEngine, delivery: Delivery, error: str, now: datetime, max_attempts: int
) -> bool:
    """Retry later, or give up after `max_attempts`; True when given up."""
    attempts = delivery.attempts + 1
    final = attempts >= max_attempts
    wait = min(MAX_BACKOFF_S, 2.0 ** min(attempts, 12))
    async with engine.begin() as conn:
        await conn.execute(
            update(alarm_deliveries)
            .where(alarm_deliveries.c.id == delivery.id)
            .values(
                status=Status.FAILED.value if final else Status.PENDING.value,
                attempts=attempts,
                due_at=now + timedelta(seconds=wait),
                last_error=error[:2000],
            )
        )
    return final
