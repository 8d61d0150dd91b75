"""A rule's backtest in the console, before it is enabled: paste the rules (YAML, as for
`plantmesh alerts backtest --rules`), choose a period (and, optionally, a simulator's truth),
and read what they would have raised on the stored history, with the ISA-18.2 figures. The run
is the API's own (`POST /api/v1/backtests`): the same roles, plants and limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from alerting.api import backtest_routes
from alerting.api.roles import Permission, allowed
from alerting.api.tokens import Principal
from alerting.backtest_report import BacktestReport, format_report
from alerting.console.guard import Viewer, form_of
from alerting.console.pages import render

router = APIRouter(prefix="/console", include_in_schema=False)

EXAMPLE = """rules:
  - name: bearing-hot
    type: threshold
    issue_type: bearing-overtemperature
    signal: bearing_temp
    above: 65.0
    deadband: 3.0
    on_delay_s: 5.0
"""
LOCAL = "%Y-%m-%dT%H:%M"


def _page(
    request: Request,
    viewer: Principal,
    fields: dict[str, str],
    report: BacktestReport | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "backtest.html",
        viewer,
        title="Backtest rules",
        section="backtest",
        status=status,
        fields=fields,
        report=report,
        lines=format_report(report) if report is not None else [],
        error=error,
        may=allowed(viewer.role, Permission.BACKTEST),
    )


@router.get("/backtest", response_class=HTMLResponse)
async def backtest_form(request: Request, viewer: Viewer) -> HTMLResponse:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    fields = {
        "rules": EXAMPLE,
        "from": (now - timedelta(hours=1)).strftime(LOCAL),
        "to": now.strftime(LOCAL),
        "truth": "",
        "plants": "",
    }
    return _page(request, viewer, fields)


@router.post("/backtest", response_class=HTMLResponse)
async def backtest_run(request: Request, viewer: Viewer) -> HTMLResponse:
    fields = await form_of(request)
    try:
        body = backtest_routes.BacktestRequest.model_validate(
            {
                "rules": fields.get("rules", ""),
                "from": fields.get("from", ""),
                "to": fields.get("to", ""),
                "truth": fields.get("truth", "").strip() or None,
                "plants": [p.strip() for p in fields.get("plants", "").split(",") if p.strip()],
            }
        )
        report = await backtest_routes.backtests(request, viewer, body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return _page(request, viewer, fields, error=problems, status=422)
    except HTTPException as exc:
        return _page(request, viewer, fields, error=str(exc.detail), status=exc.status_code)
    return _page(request, viewer, fields, report=report)
