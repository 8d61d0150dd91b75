"""Reading network incidents: lists within a caller's plants, one incident, and which incidents
an alarm is a member of."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.records.incidents import member_alarm_ids
from alerting.records.schema import alarm_trail, alarms, incident_alerts, incidents


class IncidentNotFoundError(LookupError):
    pass


@dataclass(frozen=True)
class IncidentFilter:
    plants: list[str] | None = None
    """The caller's scope (None: every plant): incidents that reached one of them."""
    open: bool = False
    issue_type: str | None = None
    machine_class: str | None = None
    limit: int = 100
    offset: int = 0


async def list_incidents(engine: AsyncEngine, where: IncidentFilter) -> list[Row[Any]]:
    """Newest first."""
    query = select(incidents)
    if where.open:
        query = query.where(incidents.c.open.is_(True))
    if where.issue_type is not None:
        query = query.where(incidents.c.issue_type == where.issue_type)
    if where.machine_class is not None:
        query = query.where(incidents.c.machine_class == where.machine_class)
    query = query.order_by(incidents.c.opened_at.desc(), incidents.c.id)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    # Plants are a JSON list: scoped in Python, then paged, so a page is never short.
    if where.plants is not None:
        scope = set(where.plants)
        rows = [r for r in rows if scope & set(r.plants)]
    return list(rows[where.offset : where.offset + where.limit])


async def get_incident(engine: AsyncEngine, incident_id: str) -> Row[Any]:
    async with engine.connect() as conn:
        row = (await conn.execute(select(incidents).where(incidents.c.id == incident_id))).first()
    if row is None:
        raise IncidentNotFoundError(f"no incident {incident_id!r}")
    return row


async def member_alarms(engine: AsyncEngine, row: Row[Any]) -> Sequence[Row[Any]]:
    """The members' own alarms, as far as they are recorded."""
    alert_ids = [a for member in row.members for a in member.get("alert_ids", [])]
    async with engine.connect() as conn:
        ids = await member_alarm_ids(conn, alert_ids)
        query = select(alarms).where(alarms.c.id.in_(sorted(ids))).order_by(alarms.c.raised_at)
        return (await conn.execute(query)).all()


async def incidents_of_alarm(engine: AsyncEngine, alarm_id: str) -> list[str]:
    """The incidents an alarm is a member of (by any alert that raised it), or stands for."""
    async with engine.connect() as conn:
        raised = select(alarm_trail.c.source_event).where(
            alarm_trail.c.alarm_id == alarm_id, alarm_trail.c.source_event.like("%:raised")
        )
        alert_ids = {alarm_id} | {
            r[0].removesuffix(":raised") for r in (await conn.execute(raised)).all()
        }
        member = select(incident_alerts.c.incident_id).where(
            incident_alerts.c.alert_id.in_(sorted(alert_ids))
        )
        itself = select(incidents.c.id).where(incidents.c.alarm_id == alarm_id)
        found = {r[0] for r in (await conn.execute(member)).all()}
        found |= {r[0] for r in (await conn.execute(itself)).all()}
    return sorted(found)
