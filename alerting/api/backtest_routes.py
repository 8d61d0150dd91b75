"""`POST /api/v1/backtests`: a rule's backtest before it is enabled. The body carries the rules as
YAML text (an alerting configuration or only `rules:`), the period and optionally a simulator's
truth as JSON lines; the answer is the report `plantmesh alerts backtest --json` prints.

Roles with the `backtest` permission (plant-manager, hq, admin) may run one, over the plants of
their token only. InfluxDB is an optional dependency of the app: `app.state.influx`, an
InfluxConnection (the alarm service sets it from its `influxdb:` settings); without it the answer
is 503. The backtest runs in a worker thread: the event loop keeps serving meanwhile."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from alerting.api.auth import Caller
from alerting.api.roles import ALL_PLANTS, Permission, allowed
from alerting.api.tokens import Principal
from alerting.backtest_influx import HistoryQuery
from alerting.backtest_report import BacktestReport
from alerting.backtest_run import config_from_text, run_history_backtest
from plantmesh.config import ConfigError
from plantmesh.connections import InfluxConnection
from plantmesh.influxql import InfluxQueryError
from plantmesh.scoring.truth import TruthFileError, TruthRecord, parse_truth

router = APIRouter(prefix="/api/v1")

MAX_SPAN = timedelta(days=7)
"""The longest period one request may replay (longer: the command line)."""
MAX_TEXT = 1_000_000


class BacktestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    rules: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
    """YAML: an alerting configuration, or only a `rules:` list."""
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    truth: Annotated[str | None, Field(max_length=MAX_TEXT)] = None
    """A simulator's truth file's JSON lines: precision, recall and latency."""
    grace_s: Annotated[float, Field(ge=0, le=3600)] = 60.0
    plants: list[str] = Field(default_factory=list)
    """Only these plants (default: every plant of the token)."""


def influx_of(request: Request) -> InfluxConnection:
    influx: InfluxConnection | None = getattr(request.app.state, "influx", None)
    if influx is None:
        raise HTTPException(503, "backtests need InfluxDB, and this API has none configured")
    return influx


def _plants(caller: Principal, wanted: list[str]) -> tuple[str, ...]:
    """The plants to replay: those asked for, within the token's scope (empty: every plant)."""
    if ALL_PLANTS in caller.plants:
        return tuple(wanted)
    outside = sorted(set(wanted) - set(caller.plants))
    if outside:
        raise HTTPException(403, f"{', '.join(outside)} outside this token's plants")
    if not (wanted or caller.plants):  # no plant at all must not read as every plant
        raise HTTPException(403, "this token has no plants")
    return tuple(wanted or caller.plants)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@router.post("/backtests", response_model=BacktestReport)
async def backtests(request: Request, caller: Caller, body: BacktestRequest) -> BacktestReport:
    if not allowed(caller.role, Permission.BACKTEST):
        raise HTTPException(403, f"role {caller.role.value} may not run backtests")
    start, end = _utc(body.start), _utc(body.end)
    if not start < end <= start + MAX_SPAN:
        raise HTTPException(
            422, f"from must be before to, at most {MAX_SPAN.days} days apart (longer: the CLI)"
        )
    plants = _plants(caller, body.plants)
    influx = influx_of(request)
    try:
        config = config_from_text(body.rules, "rules")
        truth = None
        if body.truth is not None:
            truth = parse_truth(body.truth.splitlines(), "truth", TruthRecord)
    except (ConfigError, TruthFileError) as exc:
        raise HTTPException(422, str(exc)) from None
    history = HistoryQuery(influx, plants=plants)
    try:
        done = await asyncio.to_thread(
            run_history_backtest,
            config,
            history,
            start,
            end,
            truth=truth,
            grace=timedelta(seconds=body.grace_s),
            fleet=getattr(request.app.state, "fleet", None),  # machine classes, if configured
        )
    except InfluxQueryError as exc:
        raise HTTPException(502, f"InfluxDB: {exc}") from None
    return done.report
