"""Plant scorecards over a period, within the caller's plants: JSON (with a trend per plant)
and CSV (the side-by-side table, worst of each row flagged)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse

from alerting.api.auth import Caller, store_of
from alerting.api.roles import ALL_PLANTS, Permission, allowed
from alerting.api.tokens import Principal
from alerting.scorecards.formulas import Period
from alerting.scorecards.settings import ScorecardSettings
from alerting.scorecards.source import ScorecardReport, report
from alerting.scorecards.table import csv_text

router = APIRouter(prefix="/api/v1")

DEFAULT_SPAN = timedelta(days=1)
MAX_BUCKETS = 90


async def scorecard_report(
    request: Request,
    caller: Principal,
    since: datetime | None,
    until: datetime | None,
    plant: str | None,
    buckets: int,
) -> ScorecardReport:
    """The report the caller may see: its plants only, a period that has already happened."""
    if not allowed(caller.role, Permission.READ):
        raise HTTPException(403, f"role {caller.role.value} may not read")
    now = datetime.now(UTC)
    end = min(_utc(until) or now, now)
    try:
        start = _utc(since) or end - DEFAULT_SPAN
    except OverflowError:
        raise HTTPException(422, "until is too early to count a day back from") from None
    if start >= end:
        raise HTTPException(422, f"since ({start.isoformat()}) must be before until and now")
    scope = None if ALL_PLANTS in caller.plants else list(caller.plants)
    if plant is not None:
        if scope is not None and plant not in scope:
            raise HTTPException(403, f"{plant} is outside this token's plants")
        scope = [plant]
    store = store_of(request)
    settings: ScorecardSettings = getattr(request.app.state, "scorecards", ScorecardSettings())
    return await report(
        store.engine,
        Period(start, end),
        plants=scope,
        settings=settings,
        escalation=store.escalation,
        influx=getattr(request.app.state, "influx", None),
        buckets=buckets,
    )


Since = Annotated[datetime | None, Query(description="period start (default: until - 24 h)")]
Until = Annotated[datetime | None, Query(description="period end (default and at most: now)")]
Buckets = Annotated[int, Query(ge=0, le=MAX_BUCKETS, description="trend points per plant")]


@router.get("/scorecards", response_model=ScorecardReport)
async def scorecards(
    request: Request,
    caller: Caller,
    since: Since = None,
    until: Until = None,
    plant: str | None = None,
    buckets: Buckets = 0,
) -> ScorecardReport:
    return await scorecard_report(request, caller, since, until, plant, buckets)


@router.get("/scorecards.csv", response_class=PlainTextResponse)
async def scorecards_csv(
    request: Request,
    caller: Caller,
    since: Since = None,
    until: Until = None,
    plant: str | None = None,
) -> PlainTextResponse:
    made = await scorecard_report(request, caller, since, until, plant, 0)
    name = f"scorecards-{made.start:%Y%m%dT%H%M}-{made.end:%Y%m%dT%H%M}.csv"
    return PlainTextResponse(
        csv_text(made.plants),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
