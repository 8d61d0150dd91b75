"""Who is calling: the bearer token looked up to its name, role and plant scope, and the check
every route makes before it touches an alarm."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.api.roles import Permission, allowed, in_scope
from alerting.api.tokens import Principal, principal_of
from alerting.records.queries import AlarmNotFoundError, get_alarm
from alerting.records.store import AlarmStore

bearer = HTTPBearer(auto_error=False, description="an API token: plantmesh alerting token create")


def store_of(request: Request) -> AlarmStore:
    store: AlarmStore = request.app.state.store
    return store


async def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "a bearer token is needed", {"WWW-Authenticate": "Bearer"})
    found = await principal_of(store_of(request).engine, credentials.credentials)
    if found is None:
        raise HTTPException(401, "unknown or revoked token", {"WWW-Authenticate": "Bearer"})
    return found


Caller = Annotated[Principal, Depends(_principal)]


async def alarm_for(engine: AsyncEngine, caller: Principal, alarm_id: str, need: Permission) -> Any:
    try:
        row = await get_alarm(engine, alarm_id)
    except AlarmNotFoundError:
        raise HTTPException(404, f"no alarm {alarm_id!r}") from None
    if not in_scope(caller.plants, row.plant):
        raise HTTPException(403, f"{row.plant} is outside this token's plants")
    if not allowed(caller.role, need):
        raise HTTPException(403, f"role {caller.role.value} may not {need.value}")
    return row
