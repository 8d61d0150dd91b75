"""Reading alarms back: one alarm, its trail, the deliveries made for it."""

from __future__ import annotations

from collections.abc import Sequence
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
