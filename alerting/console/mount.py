"""Putting the console into the alarm API's app: its routers, its static files and the two
exception handlers that turn a missing session into the login form and a refusal into a page."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from alerting.console import (
    alert_actions,
    alert_routes,
    backtest_page,
    events,
    incident_pages,
    login_routes,
    machine_page,
)
from alerting.console.guard import ConsoleError, LoginRequiredError, error_page, login_redirect
from plantmesh.connections import InfluxConnection


def install(app: FastAPI, influx: InfluxConnection | None = None) -> None:
    """The console under /console; `influx`: where the machine pages read series (None: they
    say no InfluxDB is configured)."""
    app.state.influx = influx
    pages = (
        login_routes,
        alert_routes,
        alert_actions,
        events,
        incident_pages,
        machine_page,
        backtest_page,
    )
    for module in pages:
        app.include_router(module.router)
    static = StaticFiles(packages=[("alerting.console", "static")])
    app.mount("/console/static", static, name="console-static")
    app.add_exception_handler(LoginRequiredError, login_redirect)
    app.add_exception_handler(ConsoleError, error_page)
