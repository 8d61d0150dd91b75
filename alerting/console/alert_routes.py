"""The alert pages: the active board (live through /console/events) and one alert with its
evidence chart, timeline, escalation and the actions the viewer's role allows."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from alerting.api.auth import store_of
from alerting.api.models import AlarmDetail
from alerting.api.reads import show
from alerting.api.roles import Permission, allowed, in_scope
from alerting.api.tokens import Principal
from alerting.console.board import board_rows, group, newest_change
from alerting.console.charts import evidence_chart
from alerting.console.guard import Viewer, refused
from alerting.console.pages import render

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/alerts", response_class=HTMLResponse)
async def board(request: Request, viewer: Viewer) -> HTMLResponse:
    store = store_of(request)
    now = store.clock()
    version = await newest_change(store.engine)
    plants = group(await board_rows(store.engine, viewer, now), now)
    return render(
        request,
        "alerts.html",
        viewer,
        title="Active alerts",
        section="alerts",
        plants=plants,
        version=version,
        total=sum(p.count for p in plants),
    )


def actions_for(viewer: Principal, detail: AlarmDetail) -> dict[str, bool]:
    """The forms to show: what the role allows (the API's own rule) and the state makes sense
    of. The API still decides: a refused step comes back with its reason."""
    open_ = detail.state != "normal"
    return {
        "acknowledge": allowed(viewer.role, Permission.ACKNOWLEDGE)
        and open_
        and not detail.acknowledged,
        "shelve": allowed(viewer.role, Permission.SHELVE) and open_ and detail.shelving is None,
        "unshelve": allowed(viewer.role, Permission.SHELVE) and detail.shelving is not None,
        "resolve": allowed(viewer.role, Permission.RESOLVE) and open_ and not detail.resolved,
        "comment": allowed(viewer.role, Permission.COMMENT),
        "assign": allowed(viewer.role, Permission.ASSIGN),
    }


async def alert_page(
    request: Request, viewer: Principal, alarm_id: str, *, error: str = "", status: int = 200
) -> HTMLResponse:
    try:
        detail = await show(request, viewer, alarm_id)
    except HTTPException as exc:
        raise refused(exc) from None
    title = f"{detail.issue_type} on {detail.machine}"
    chart = evidence_chart(
        detail.evidence, f"Evidence of {detail.signal} on {detail.plant}/{detail.machine}"
    )
    return render(
        request,
        "alert.html",
        viewer,
        title=title,
        section="alerts",
        status=status,
        alert=detail,
        chart=chart,
        can=actions_for(viewer, detail),
        error=error,
        machine_link=in_scope(viewer.plants, detail.plant) and detail.plant != "network",
        age_s=(store_of(request).clock() - detail.opened_at).total_seconds(),
    )


@router.get("/alerts/{alarm_id}", response_class=HTMLResponse)
async def alert(request: Request, viewer: Viewer, alarm_id: str) -> HTMLResponse:
    return await alert_page(request, viewer, alarm_id)
