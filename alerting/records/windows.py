"""Maintenance windows as data: what one is, and the one active for a machine now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from alerting.records.schema import aware, maintenance_windows


@dataclass(frozen=True, slots=True)
class Window:
    id: int
    plant: str
    machine: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    actor: str
    ended_at: datetime | None

    @property
    def why(self) -> str:
        return (
            f"planned maintenance of {self.plant}/{self.machine} (window {self.id}): {self.reason}"
        )


def window_of(row: Row[Any]) -> Window:
    ended = None if row.ended_at is None else aware(row.ended_at)
    return Window(
        row.id,
        row.plant,
        row.machine,
        aware(row.starts_at),
        aware(row.ends_at),
        row.reason,
        row.actor,
        ended,
    )


async def active_window(
    conn: AsyncConnection, plant: str, machine: str, now: datetime
) -> Window | None:
    query = select(maintenance_windows).where(
        maintenance_windows.c.plant == plant,
        maintenance_windows.c.machine == machine,
        maintenance_windows.c.ended_at.is_(None),
        maintenance_windows.c.starts_at <= now,
        maintenance_windows.c.ends_at > now,
    )
    row = (await conn.execute(query.order_by(maintenance_windows.c.id))).first()
    return None if row is None else window_of(row)
