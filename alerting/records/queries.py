"""Reading alarms back: lists with filters, one alarm, its trail, the deliveries made for it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.records.schema import alarm_deliveries, alarm_trail, alarms


class AlarmNotFoundError(LookupError):
    pass


async def get_alarm(engine: AsyncEngine, alarm_id: str) -> Row[Any]:
    async with engine.connect() as conn:
        row = (await conn.execute(select(alarms).where(alarms.c.id == alarm_id))).first()
    if row is None:
        raise AlarmNotFoundError(f"no alarm {alarm_id!r}")
    return row


async def trail_of(engine: AsyncEngine, alarm_id: str) -> Sequence[Row[Any]]:
    query = (
        select(alarm_trail).where(alarm_trail.c.alarm_id == alarm_id).order_by(alarm_trail.c.seq)
    )
    async with engine.connect() as conn:
        return (await conn.execute(query)).all()


async def deliveries_of(engine: AsyncEngine, alarm_id: str) -> Sequence[Row[Any]]:
    query = (
        select(alarm_deliveries)
        .where(alarm_deliveries.c.alarm_id == alarm_id)
        .order_by(alarm_deliveries.c.id)
    )
    async with engine.connect() as conn:
        return (await conn.execute(query)).all()


@dataclass(frozen=True, slots=True)
class AlarmFilter:
    plants: list[str] | None = None
    """The caller's scope (None: every plant)."""
    plant: str | None = None
    line: str | None = None
    machine: str | None = None
    issue_type: str | None = None
    state: str | None = None
    priority: str | None = None
    open_only: bool = False
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    offset: int = 0


async def list_alarms(engine: AsyncEngine, where: AlarmFilter) -> Sequence[Row[Any]]:
    """Newest first."""
    query = select(alarms)
    if where.plants is not None:
        query = query.where(alarms.c.plant.in_(where.plants))
    for column, value in (
        (alarms.c.plant, where.plant),
        (alarms.c.line, where.line),
        (alarms.c.machine, where.machine),
        (alarms.c.issue_type, where.issue_type),
        (alarms.c.state, where.state),
        (alarms.c.priority, where.priority),
    ):
        if value is not None:
            query = query.where(column == value)
    if where.open_only:
        query = query.where(alarms.c.open_key.is_not(None))
    if where.since is not None:
        query = query.where(alarms.c.opened_at >= where.since)
    if where.until is not None:
        query = query.where(alarms.c.opened_at < where.until)
    query = query.order_by(alarms.c.opened_at.desc(), alarms.c.id)
    async with engine.connect() as conn:
        return (await conn.execute(query.limit(where.limit).offset(where.offset))).all()
