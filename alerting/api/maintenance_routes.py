"""Planned maintenance through the API: a machine's alarms suppressed by design for a time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from alerting.api.auth import Caller, store_of
from alerting.api.roles import ALL_PLANTS, Permission, allowed, in_scope
from alerting.api.tokens import Principal
from alerting.records import maintenance
from alerting.records.maintenance import WindowError
from alerting.records.windows import Window

router = APIRouter(prefix="/api/v1")
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
WindowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
"""A database row id: beyond 64 bits it cannot exist (and the driver would overflow)."""


class MaintenanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plant: Name
    machine: Name
    duration_s: Annotated[float, Field(gt=0, le=7 * 24 * 3600)]
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class WindowOut(BaseModel):
    id: int
    plant: str
    machine: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    actor: str
    ended_at: datetime | None
    suppressed: int = 0
    """Alarms this call suppressed or showed again."""


def _out(window: Window, changed: int = 0) -> WindowOut:
    return WindowOut(
        id=window.id,
        plant=window.plant,
        machine=window.machine,
        starts_at=window.starts_at,
        ends_at=window.ends_at,
        reason=window.reason,
        actor=window.actor,
        ended_at=window.ended_at,
        suppressed=changed,
    )


def _check(caller: Principal, plant: str) -> None:
    if not in_scope(caller.plants, plant):
        raise HTTPException(403, f"{plant} is outside this token's plants")
    if not allowed(caller.role, Permission.MAINTENANCE):
        raise HTTPException(403, f"role {caller.role.value} may not start or end maintenance")


@router.post("/maintenance", response_model=WindowOut)
async def start_maintenance(request: Request, caller: Caller, body: MaintenanceIn) -> WindowOut:
    _check(caller, body.plant)
    store = store_of(request)
    until = store.clock() + timedelta(seconds=body.duration_s)
    try:
        window, changed = await maintenance.start(
            store, body.plant, body.machine, until, body.reason, caller.actor
        )
    except WindowError as exc:
        raise HTTPException(409, str(exc)) from None
    return _out(window, len(changed))


@router.get("/maintenance", response_model=list[WindowOut])
async def list_maintenance(request: Request, caller: Caller) -> list[WindowOut]:
    scope = None if ALL_PLANTS in caller.plants else caller.plants
    return [_out(w) for w in await maintenance.windows(store_of(request), scope)]


@router.post("/maintenance/{window_id}/end", response_model=WindowOut)
async def end_maintenance(request: Request, caller: Caller, window_id: WindowId) -> WindowOut:
    store = store_of(request)
    try:
        window = await maintenance.get_window(store, window_id)
    except LookupError:
        raise HTTPException(404, f"no maintenance window {window_id}") from None
    _check(caller, window.plant)
    if window.ended_at is not None:
        raise HTTPException(409, "this window has ended already")
    changed = await maintenance.end(store, window_id, caller.actor)
    return _out(await maintenance.get_window(store, window_id), len(changed))
