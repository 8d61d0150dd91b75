"""The scorecards in the console: the plants side by side over a chosen period, the worst of
each row marked (in words as well as colour), a trend per plant, and the table as CSV."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse

from alerting.api.scorecard_routes import scorecard_report
from alerting.console.guard import ConsoleError, Viewer, refused
from alerting.console.pages import add_templates, render
from alerting.scorecards.source import ScorecardReport
from alerting.scorecards.table import FIGURES, cell, csv_text, rows

add_templates("alerting.scorecards", "templates")
router = APIRouter(prefix="/console")

SPANS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7),
         "30d": timedelta(days=30)}  # fmt: skip
TREND_POINTS = 6
TREND_FIGURES = ("alarms", "peak_10min", "tta_p50", "in_time", "escalated", "completeness")

Span = Annotated[str, Query(pattern="^(1h|24h|7d|30d)$")]
Plant = Annotated[str | None, Query(max_length=128)]


When = Annotated[datetime | None, Query(description="a chosen period instead of the span")]


async def _report(
    request: Request,
    viewer: Viewer,
    span: str,
    plant: str | None,
    since: datetime | None,
    until: datetime | None,
) -> ScorecardReport:
    end = until or datetime.now(UTC)
    try:
        start = since or end - SPANS[span]
    except OverflowError:
        raise ConsoleError(422, "that period starts before the calendar does") from None
    try:
        return await scorecard_report(request, viewer, start, end, plant or None, TREND_POINTS)
    except HTTPException as exc:
        raise refused(exc) from None


@router.get("/scorecards", response_class=HTMLResponse)
async def scorecards(
    request: Request,
    viewer: Viewer,
    span: Span = "24h",
    plant: Plant = None,
    since: When = None,
    until: When = None,
) -> HTMLResponse:
    made = await _report(request, viewer, span, plant, since, until)
    figures = {f.key: f for f in FIGURES}
    trend = {
        name: [
            (point.start, [cell(figures[key].value(point.scorecard), figures[key].unit)
                           for key in TREND_FIGURES])
            for point in points
        ]
        for name, points in made.trend.items()
    }  # fmt: skip
    return render(
        request,
        "scorecards.html",
        viewer,
        title="Scorecards",
        section="scorecards",
        report=made,
        rows=rows(made.plants),
        cell=cell,
        spans=list(SPANS),
        span=span,
        custom=since is not None or until is not None,
        plant=plant or "",
        query=_query(span, plant, since, until),
        trend=trend,
        trend_labels=[figures[key].label for key in TREND_FIGURES],
    )


@router.get("/scorecards.csv", response_class=PlainTextResponse)
async def scorecards_csv(
    request: Request,
    viewer: Viewer,
    span: Span = "24h",
    plant: Plant = None,
    since: When = None,
    until: When = None,
) -> PlainTextResponse:
    made = await _report(request, viewer, span, plant, since, until)
    if not made.plants:
        raise ConsoleError(404, "no plant in this period")
    name = f"scorecards-{made.start:%Y%m%dT%H%M}-{made.end:%Y%m%dT%H%M}.csv"
    return PlainTextResponse(
        csv_text(made.plants),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _query(span: str, plant: str | None, since: datetime | None, until: datetime | None) -> str:
    """The page's own choices, for the CSV link."""
    chosen = {"span": span, "plant": plant, "since": since and since.isoformat(),
              "until": until and until.isoformat()}  # fmt: skip
    return urlencode({k: v for k, v in chosen.items() if v})
