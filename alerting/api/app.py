"""The alarm API. Every request carries `Authorization: Bearer <token>`; the token's role says
what it may do and its plant scope which alarms it sees. A list never shows an alarm outside
the scope; acting on one (or reading it) is 403. Refused lifecycle steps (acknowledging twice,
shelving beyond the maximum) are 409 with the reason. Every action lands in the alarm's trail
with its actor. OpenAPI at /openapi.json."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text

from alerting.api import (
    actions,
    backtest_routes,
    incident_routes,
    maintenance_routes,
    reads,
    scorecard_routes,
)
from alerting.console.mount import install as install_console
from alerting.records.store import AlarmStore
from alerting.scorecards import page as scorecard_page
from plantmesh.connections import InfluxConnection


def make_app(store: AlarmStore, influx: InfluxConnection | None = None) -> FastAPI:
    """`influx`: where the console's machine pages read series (None: not configured)."""
    app = FastAPI(
        title="plantmesh alarms",
        version="1",
        description="Alarms after ISA-18.2: list, inspect, acknowledge, shelve, resolve.",
    )
    app.state.store = store
    app.include_router(reads.router)
    app.include_router(actions.router)
    app.include_router(maintenance_routes.router)
    app.include_router(incident_routes.router)
    app.include_router(scorecard_routes.router)
    app.include_router(backtest_routes.router)
    install_console(app, influx)  # the web console under /console
    app.include_router(scorecard_page.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, bool]:
        async with store.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return {"ok": True}

    return app
