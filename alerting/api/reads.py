"""Reading alarms: who am I, lists with filters within the caller's plants, one alarm with its
evidence, timeline and deliveries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from alerting.api.auth import Caller, alarm_for, store_of
from alerting.api.models import AlarmDetail, AlarmOut, WhoAmI, alarm_out, detail_out
from alerting.api.roles import ALL_PLANTS, Permission
from alerting.records.incident_queries import incidents_of_alarm
from alerting.records.queries import AlarmFilter, deliveries_of, list_alarms, trail_of

router = APIRouter(prefix="/api/v1")


@router.get("/whoami", response_model=WhoAmI)
async def whoami(caller: Caller) -> WhoAmI:
    return WhoAmI(name=caller.name, role=caller.role.value, plants=caller.plants)


@router.get("/alarms", response_model=list[AlarmOut])
async def alarms(
    request: Request,
    caller: Caller,
    plant: str | None = None,
    line: str | None = None,
    machine: str | None = None,
    issue_type: str | None = None,
    state: str | None = None,
    priority: str | None = None,
    open: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    scope = None if ALL_PLANTS in caller.plants else caller.plants
    where = AlarmFilter(
        scope,
        plant,
        line,
        machine,
        issue_type,
        state,
        priority,
        open,
        _utc(since),
        _utc(until),
        limit,
        offset,
    )
    return [alarm_out(r) for r in await list_alarms(store_of(request).engine, where)]


@router.get("/alarms/{alarm_id}", response_model=AlarmDetail)
async def show(request: Request, caller: Caller, alarm_id: str) -> AlarmDetail:
    engine = store_of(request).engine
    row = await alarm_for(engine, caller, alarm_id, Permission.READ)
    made = detail_out(row, await trail_of(engine, alarm_id), await deliveries_of(engine, alarm_id))
    return made.model_copy(update={"incidents": await incidents_of_alarm(engine, alarm_id)})


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
