"""Trail entries still to publish, written in the transaction that made them (the
transactional outbox): the Kafka topic and the other sinks see every transition, also when the
process dies between the database's commit and the publication. A publisher claims rows, and
deletes them once its sink accepted them; a failed row waits with backoff."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alerting.records.schema import alarm_outbox
from plantmesh.contracts import AlarmTransition

MAX_BACKOFF_S = 60.0


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    sink: str
    transition: AlarmTransition
    attempts: int


async def enqueue(
    conn: AsyncConnection, transition: AlarmTransition, sinks: Sequence[str], now: datetime
) -> None:
    if not sinks:
        return
    payload = transition.model_dump(mode="json", exclude_none=True)
    await conn.execute(
        insert(alarm_outbox),
        [
            {
                "sink": s,
                "trail_seq": transition.seq,
                "payload": payload,
                "attempts": 0,
                "due_at": now,
            }
            for s in sinks
        ],
    )


async def claim(engine: AsyncEngine, sink: str, now: datetime, limit: int) -> list[Pending]:
    """Due rows of one sink, oldest trail entries first (so one alarm's transitions go out in
    order). Rows another process holds are skipped (PostgreSQL); the caller publishes, then
    `done` or `retry`."""
    query = (
        select(alarm_outbox)
        .where(alarm_outbox.c.sink == sink, alarm_outbox.c.due_at <= now)
        .order_by(alarm_outbox.c.trail_seq)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    async with engine.begin() as conn:
        rows = (await conn.execute(query)).all()
        if not rows:
            return []
        # Lease them: another process polling meanwhile will not take them for a while.
        lease = now + timedelta(seconds=30)
        ids = [r.id for r in rows]
        await conn.execute(
            update(alarm_outbox).where(alarm_outbox.c.id.in_(ids)).values(due_at=lease)
        )
    return [
        Pending(r.id, r.sink, AlarmTransition.model_validate(r.payload), r.attempts) for r in rows
    ]


async def done(engine: AsyncEngine, rows: Sequence[Pending]) -> None:
    if rows:
        async with engine.begin() as conn:
            await conn.execute(
                delete(alarm_outbox).where(alarm_outbox.c.id.in_([r.id for r in rows]))
            )


async def retry(engine: AsyncEngine, rows: Sequence[Pending], now: datetime) -> None:
    async with engine.begin() as conn:
        for row in rows:
            wait = min(MAX_BACKOFF_S, 2.0 ** min(row.attempts, 10))
            values: dict[str, Any] = {
                "attempts": row.attempts + 1,
                "due_at": now + timedelta(seconds=wait),
            }
            await conn.execute(
                update(alarm_outbox).where(alarm_outbox.c.id == row.id).values(**values)
            )
