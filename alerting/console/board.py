"""The active alerts board: the open occurrences in the viewer's plants (and those that closed
in the last hour, so a closed one changes state in front of the user before it leaves), grouped
per plant, line and machine, most urgent first; and the cheap question the live stream asks
every second: has anything changed since (the newest trail entry's number)?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.api.roles import ALL_PLANTS
from alerting.api.tokens import Principal
from alerting.records.schema import alarm_trail, alarms, aware

RECENTLY_CLOSED = timedelta(hours=1)
MAX_ROWS = 5000
PRIORITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


@dataclass(frozen=True, slots=True)
class BoardRow:
    id: str
    priority: str
    state: str
    age_s: float
    signal: str
    issue_type: str
    summary: str
    flags: tuple[str, ...]
    assignee: str | None
    opened_at: datetime


@dataclass
class MachineGroup:
    plant: str
    line: str
    machine: str
    rows: list[BoardRow] = field(default_factory=list)


@dataclass
class LineGroup:
    line: str
    machines: list[MachineGroup] = field(default_factory=list)


@dataclass
class PlantGroup:
    plant: str
    lines: list[LineGroup] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(m.rows) for line in self.lines for m in line.machines)


def scope_of(viewer: Principal) -> list[str] | None:
    """The plants a viewer's lists are limited to (None: every plant), as the API's lists."""
    return None if ALL_PLANTS in viewer.plants else viewer.plants


async def board_rows(engine: AsyncEngine, viewer: Principal, now: datetime) -> Sequence[Any]:
    query = select(alarms).where(
        or_(alarms.c.open_key.is_not(None), alarms.c.closed_at >= now - RECENTLY_CLOSED)
    )
    scope = scope_of(viewer)
    if scope is not None:
        query = query.where(alarms.c.plant.in_(scope))
    query = query.order_by(alarms.c.opened_at.desc(), alarms.c.id).limit(MAX_ROWS)
    async with engine.connect() as conn:
        return (await conn.execute(query)).all()


async def newest_change(engine: AsyncEngine) -> int:
    """The newest trail entry's number: every transition and action writes one, whichever
    process made it, so a changed number means the board may have changed."""
    async with engine.connect() as conn:
        found = (await conn.execute(select(func.max(alarm_trail.c.seq)))).scalar()
    return int(found or 0)


def _flags(row: Any) -> tuple[str, ...]:
    flags = []
    if row.shelving:
        flags.append("shelved")
    if row.suppressed_by:
        flags.append("suppressed")
    if row.out_of_service:
        flags.append("out of service")
    return tuple(flags)


def board_row(row: Any, now: datetime) -> BoardRow:
    opened = aware(row.opened_at)
    evidence = row.evidence if isinstance(row.evidence, dict) else {}
    return BoardRow(
        id=row.id,
        priority=row.priority,
        state=row.state,
        age_s=(now - opened).total_seconds(),
        signal=row.signal,
        issue_type=row.issue_type,
        summary=str(evidence.get("summary", "")),
        flags=_flags(row),
        assignee=row.assignee,
        opened_at=opened,
    )


def group(rows: Sequence[Any], now: datetime) -> list[PlantGroup]:
    """Plants, lines and machines in name order; within a machine the most urgent first
    (priority, then unacknowledged before acknowledged, then the oldest)."""
    machines: dict[tuple[str, str, str], MachineGroup] = {}
    for row in rows:
        key = (row.plant, row.line, row.machine)
        machines.setdefault(key, MachineGroup(*key)).rows.append(board_row(row, now))
    plants: dict[str, PlantGroup] = {}
    for (plant, line, _), found in sorted(machines.items()):
        found.rows.sort(
            key=lambda r: (
                PRIORITY_RANK.get(r.priority, 9),
                r.state == "normal",
                "unacknowledged" not in r.state,
                r.opened_at,
            )
        )
        lines = plants.setdefault(plant, PlantGroup(plant)).lines
        if not lines or lines[-1].line != line:
            lines.append(LineGroup(line))
        lines[-1].machines.append(found)
    return list(plants.values())
