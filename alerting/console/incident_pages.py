"""Network incidents: the list within the viewer's plants and one incident with its
explanation, its members across plants (linked to the member alerts the viewer may open) and
its alarm's timeline. The data and the scope rule are the API's (alerting/api/incident_routes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from alerting.api import incident_routes
from alerting.api.roles import in_scope
from alerting.console.guard import Viewer, refused
from alerting.console.pages import render

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/incidents", response_class=HTMLResponse)
async def incidents(request: Request, viewer: Viewer, open: bool = False) -> HTMLResponse:
    found = await incident_routes.incidents(
        request, viewer, open=open, issue_type=None, machine_class=None, limit=200, offset=0
    )
    return render(
        request,
        "incidents.html",
        viewer,
        title="Network incidents",
        section="incidents",
        incidents=found,
        open_only=open,
    )


def _members(viewer: Viewer, members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each member with `link`: whether the viewer may open its alert."""
    out = []
    for member in members:
        alarm = member.get("alarm")
        link = alarm is not None and in_scope(viewer.plants, str(member["plant"]))
        out.append({**member, "link": link})
    return out


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
async def incident(request: Request, viewer: Viewer, incident_id: str) -> HTMLResponse:
    try:
        found = await incident_routes.incident(request, viewer, incident_id)
    except HTTPException as exc:
        raise refused(exc) from None
    alarm = found["alarm"]
    return render(
        request,
        "incident.html",
        viewer,
        title=f"Incident: {found['issue_type']} on {found['machine_class']}",
        section="incidents",
        incident=found,
        members=_members(viewer, found["member_list"]),
        alarm=alarm,
        alarm_link=alarm is not None and in_scope(viewer.plants, alarm.plant),
    )
