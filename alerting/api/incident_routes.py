"""Network incidents over the API: lists within the caller's plants, one incident with its
explanation, members (each with its own alarm) and the incident alarm's timeline. Acting on an
incident (acknowledge, resolve, comment ...) is acting on its alarm: /api/v1/alarms/{alarm_id}."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

from alerting.api.auth import Caller, store_of
from alerting.api.models import AlarmDetail, AlarmOut, alarm_out, detail_out
from alerting.api.roles import ALL_PLANTS
from alerting.incidents.alarm import NETWORK_PLANT
from alerting.records.incident_queries import (
    IncidentFilter,
    IncidentNotFoundError,
    get_incident,
    list_incidents,
    member_alarms,
)
from alerting.records.queries import AlarmNotFoundError, deliveries_of, get_alarm, trail_of
from alerting.records.schema import aware

router = APIRouter(prefix="/api/v1")


class IncidentOut(BaseModel):
    id: str
    alarm_id: str | None
    state: str | None
    """The incident alarm's state (active_unacknowledged ...)."""
    open: bool
    """The correlation stage's view: some member still active, or within the hold time."""
    issue_type: str
    machine_class: str
    severity: str
    plants: list[str]
    members: int
    opened_at: datetime
    closed_at: datetime | None
    version: int
    summary: str


class IncidentMemberOut(BaseModel):
    plant: str
    area: str
    line: str
    machine: str
    signal: str
    raised_at: datetime
    cleared_at: datetime | None
    summary: str
    alert_ids: list[str]
    alarm: AlarmOut | None
    """The member's own alarm (local lifecycle and escalation), once recorded."""


class IncidentDetail(IncidentOut):
    explanation: dict[str, Any]
    terms: dict[str, Any]
    member_list: list[IncidentMemberOut]
    alarm: AlarmDetail | None


def _scope(caller: Caller) -> list[str] | None:
    return None if ALL_PLANTS in caller.plants or NETWORK_PLANT in caller.plants else caller.plants


def _out(row: Any, state: str | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "alarm_id": row.alarm_id,
        "state": state,
        "open": row.open,
        "issue_type": row.issue_type,
        "machine_class": row.machine_class,
        "severity": row.severity,
        "plants": row.plants,
        "members": len(row.members),
        "opened_at": aware(row.opened_at),
        "closed_at": None if row.closed_at is None else aware(row.closed_at),
        "version": row.version,
        "summary": str(row.explanation.get("text", "")),
    }


@router.get("/incidents", response_model=list[IncidentOut])
async def incidents(
    request: Request,
    caller: Caller,
    open: bool = False,
    issue_type: str | None = None,
    machine_class: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    engine = store_of(request).engine
    where = IncidentFilter(_scope(caller), open, issue_type, machine_class, limit, offset)
    found = []
    for row in await list_incidents(engine, where):
        found.append(_out(row, await _state(request, row.alarm_id)))
    return found


@router.get("/incidents/{incident_id}", response_model=IncidentDetail)
async def incident(request: Request, caller: Caller, incident_id: str) -> dict[str, Any]:
    engine = store_of(request).engine
    try:
        row = await get_incident(engine, incident_id)
    except IncidentNotFoundError:
        raise HTTPException(404, f"no incident {incident_id!r}") from None
    scope = _scope(caller)
    if scope is not None and not set(scope) & set(row.plants):
        raise HTTPException(403, "the incident reached none of this token's plants")
    by_alert = {found.id: found for found in await member_alarms(engine, row)}
    members = []
    for member in row.members:
        own = next((by_alert[a] for a in member["alert_ids"] if a in by_alert), None)
        members.append({**member, "alarm": None if own is None else alarm_out(own)})
    alarm: AlarmDetail | None = None
    if row.alarm_id is not None:
        found = await get_alarm(engine, row.alarm_id)
        trail, sent = (
            await trail_of(engine, row.alarm_id),
            await deliveries_of(engine, row.alarm_id),
        )
        alarm = detail_out(found, trail, sent)
    return {
        **_out(row, None if alarm is None else alarm.state),
        "explanation": row.explanation,
        "terms": row.terms,
        "member_list": members,
        "alarm": alarm,
    }


async def _state(request: Request, alarm_id: str | None) -> str | None:
    if alarm_id is None:
        return None
    try:
        return str((await get_alarm(store_of(request).engine, alarm_id)).state)
    except AlarmNotFoundError:
        return None
