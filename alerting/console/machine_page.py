"""A machine's page: its recent series from InfluxDB, a small chart per signal, with the
`plantmesh query series` command that prints the same figures. Within the viewer's plants only;
"no InfluxDB configured" when the alarm service has none."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from alerting.api.roles import in_scope
from alerting.console.charts import series_chart
from alerting.console.guard import ConsoleError, Viewer
from alerting.console.pages import render
from alerting.console.series import DEFAULT_WINDOW, WINDOWS, command_of, recent_series
from plantmesh.connections import InfluxConnection
from plantmesh.influxql import InfluxQueryError

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/machines/{plant}/{machine}", response_class=HTMLResponse)
async def machine_page(
    request: Request, viewer: Viewer, plant: str, machine: str, since: str = DEFAULT_WINDOW
) -> HTMLResponse:
    if not in_scope(viewer.plants, plant):
        raise ConsoleError(403, f"{plant} is outside this token's plants")
    if since not in WINDOWS:
        since = DEFAULT_WINDOW
    influx: InfluxConnection | None = getattr(request.app.state, "influx", None)
    charts, error = [], ""
    if influx is not None:
        try:
            found = await recent_series(influx, plant, machine, since)
        except InfluxQueryError as exc:
            found, error = [], f"InfluxDB did not answer: {exc}"
        for series in found:
            title = f"{series.signal} on {plant}/{machine}, mean per {WINDOWS[since]}"
            charts.append(
                {
                    "signal": series.signal,
                    "unit": series.unit,
                    "points": len(series.points),
                    "last": series.points[-1][1] if series.points else None,
                    "chart": series_chart(series.points, title, series.unit),
                    "command": command_of(plant, machine, series.signal, since, WINDOWS[since]),
                }
            )
    return render(
        request,
        "machine.html",
        viewer,
        title=f"{machine} ({plant})",
        section="alerts",
        plant=plant,
        machine=machine,
        since=since,
        windows=list(WINDOWS),
        configured=influx is not None,
        charts=charts,
        error=error,
        example=command_of(plant, machine, "SIGNAL", since, WINDOWS[since]),
    )
