"""Network incidents in the alarm database: each IncidentUpdate from the correlation stage moves
the incident's alarm (alerting/incidents/alarm.py) and replaces the stored picture of it.

- opened or reopened: the incident's alarm is raised (a new occurrence, or the open one again),
  so its escalation policy tells headquarters once;
- a member from a plant the incident did not have: a trail entry, and everyone told so far hears
  it (UPDATED) — not once per member alert;
- another member, a member cleared: a trail entry only;
- closed: the alarm's condition clears (it still needs acknowledging, like any alarm).

Updates carry the whole incident and a version; one not newer than the stored one changes
nothing, so replays and the duplicates of a restarted stage are harmless."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Row, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from alerting.incidents.alarm import incident_event, incident_evidence
from alerting.records import notes
from alerting.records.schema import alarm_trail, alarms, incident_alerts, incidents
from alerting.records.store import AlarmStore
from plantmesh.contracts import AlarmTransition, AlertEventKind, IncidentChange, IncidentUpdate

CORRELATION = "correlation"
"""The actor of what the correlation stage does to an incident's alarm."""


def describe(update: IncidentUpdate) -> str:
    member = update.member
    if member is None:
        return update.change.value
    where = f"{member.plant}/{member.line}/{member.machine}"
    if update.change is IncidentChange.MEMBER_CLEARED:
        return f"{where} cleared"
    joined = "new plant " if update.new_plant else ""
    return f"{joined}{where} joined: {member.summary}"


class IncidentRecorder:
    def __init__(self, store: AlarmStore) -> None:
        self.store = store

    async def apply(self, update: IncidentUpdate) -> list[AlarmTransition]:
        """The transitions it made (none for a replay or a stale update)."""
        stored = await self._stored(update.incident_id)
        if stored is not None and stored.version >= update.version:
            return []
        made = await self._lifecycle(update, stored)
        alarm_id = made[0].alarm_id if made else None
        if alarm_id is None:
            alarm_id = stored.alarm_id if stored is not None else await self._open_alarm(update)
        await self._save(update, alarm_id)
        return made

    async def _lifecycle(
        self, update: IncidentUpdate, stored: Row[Any] | None
    ) -> list[AlarmTransition]:
        change = update.change
        # An incident first seen mid-story (the service started late) is raised all the same.
        if change in (IncidentChange.OPENED, IncidentChange.REOPENED) or stored is None:
            if change is IncidentChange.CLOSED:
                return []
            return await self.store.record(incident_event(update, AlertEventKind.RAISED))
        if change is IncidentChange.CLOSED:
            return await self.store.record(incident_event(update, AlertEventKind.CLEARED))
        if stored.alarm_id is None:
            return []
        tell = change is IncidentChange.JOINED and update.new_plant
        evidence = incident_evidence(update).model_dump(mode="json")
        try:
            made = await notes.note(
                self.store,
                stored.alarm_id,
                "update",
                CORRELATION,
                describe(update),
                values={"evidence": evidence},
                details={"change": change.value, "version": update.version},
                source=f"{update.incident_id}:{update.version}",
                tell_told=tell,
            )
        except IntegrityError:
            return []  # recorded already (a replay racing another process)
        return [made]

    async def _stored(self, incident_id: str) -> Row[Any] | None:
        async with self.store.engine.connect() as conn:
            query = select(incidents).where(incidents.c.id == incident_id)
            return (await conn.execute(query)).first()

    async def _open_alarm(self, update: IncidentUpdate) -> str | None:
        event = incident_event(update, AlertEventKind.RAISED)
        async with self.store.engine.connect() as conn:
            query = select(alarms.c.id).where(alarms.c.machine == event.asset.machine)
            found = (await conn.execute(query.order_by(alarms.c.opened_at.desc()))).first()
        return None if found is None else str(found.id)

    async def _save(self, update: IncidentUpdate, alarm_id: str | None) -> None:
        values = {
            "alarm_id": alarm_id,
            "version": update.version,
            "issue_type": update.issue_type,
            "machine_class": update.machine_class,
            "severity": update.severity.value,
            "open": update.change is not IncidentChange.CLOSED,
            "opened_at": update.opened_at,
            "closed_at": update.closed_at,
            "plants": list(update.plants),
            "members": [m.model_dump(mode="json") for m in update.members],
            "explanation": update.explanation,
            "terms": update.terms.model_dump(mode="json"),
            "updated_at": self.store.clock(),
        }
        async with self.store.engine.begin() as conn:
            query = select(incidents.c.version).where(incidents.c.id == update.incident_id)
            current = (await conn.execute(query.with_for_update())).first()
            if current is None:
                await conn.execute(insert(incidents).values(id=update.incident_id, **values))
            elif current.version < update.version:
                await conn.execute(
                    sa.update(incidents)
                    .where(incidents.c.id == update.incident_id)
                    .values(**values)
                )
            await _link(conn, update)


async def member_alarm_ids(conn: AsyncConnection, alert_ids: Sequence[str]) -> set[str]:
    """The alarms the members' alerts raised (an alarm's id is its first alert's; a later raise
    of the same occurrence is in its trail)."""
    if not alert_ids:
        return set()
    direct = select(alarms.c.id).where(alarms.c.id.in_(alert_ids))
    sources = [f"{a}:raised" for a in alert_ids]
    via_trail = select(alarm_trail.c.alarm_id).where(alarm_trail.c.source_event.in_(sources))
    found = {r[0] for r in (await conn.execute(direct)).all()}
    return found | {r[0] for r in (await conn.execute(via_trail)).all()}


async def _link(conn: AsyncConnection, update: IncidentUpdate) -> None:
    """Record the members' alert ids the incident did not have yet."""
    wanted = {a for member in update.members for a in member.alert_ids}
    query = select(incident_alerts.c.alert_id).where(
        incident_alerts.c.incident_id == update.incident_id
    )
    have = {r[0] for r in (await conn.execute(query)).all()}
    for alert_id in sorted(wanted - have):
        await conn.execute(
            insert(incident_alerts).values(incident_id=update.incident_id, alert_id=alert_id)
        )
