"""Rendering a console page: the Jinja2 environment (templates shipped in the package), the
filters every page uses (times, ages, states) and `render`, which fills in what the base
template needs (who is logged in, the CSRF token of the logout form, the current section).

A page of another package (scorecards ...) uses the same base template:

    from alerting.console.guard import Viewer
    from alerting.console.pages import add_templates, render

    add_templates("alerting.scorecards", "templates")   # once, at import
    @router.get("/console/scorecards", response_class=HTMLResponse)
    async def scorecards(request: Request, viewer: Viewer) -> HTMLResponse:
        return render(request, "scorecards.html", viewer, title="Scorecards", section="scorecards")

with a template `{% extends "base.html" %}{% block main %}...{% endblock %}`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)

from alerting.api.tokens import Principal
from alerting.console.session import COOKIE, CSRF_FIELD, csrf_token

_loaders: list[BaseLoader] = [PackageLoader("alerting.console", "templates")]
_loader = ChoiceLoader(_loaders)
env = Environment(
    loader=_loader,
    autoescape=select_autoescape(["html", "svg"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def add_templates(package: str, folder: str = "templates") -> None:
    """Let templates of another package extend the console's base template."""
    _loaders.append(PackageLoader(package, folder))


def _aware(value: datetime | str) -> datetime:
    """A time (or its ISO text, as JSON columns hold it) in UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    try:
        return _aware(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return str(value)


def iso(value: datetime | str | None) -> str:
    if value is None:
        return ""
    try:
        return _aware(value).astimezone(UTC).isoformat()
    except ValueError:
        return ""


def age(seconds: float) -> str:
    """3 s, 4 min, 2 h 5 min, 3 d 4 h: readable at a glance."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def state_label(state: str | None) -> str:
    return "—" if not state else state.replace("_", " ")


env.filters.update(when=when, iso=iso, age=age, state_label=state_label)


def render(
    request: Request,
    template: str,
    viewer: Principal | None,
    *,
    title: str,
    section: str = "",
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page with the base template's navigation and the security headers of every page."""
    token = request.cookies.get(COOKIE)
    page = env.get_template(template).render(
        request=request,
        viewer=viewer,
        title=title,
        section=section,
        csrf_field=CSRF_FIELD,
        csrf=csrf_token(token) if token and viewer is not None else "",
        **context,
    )
    return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)


def fragment(template: str, **context: Any) -> str:
    """A piece of a page (the live alert list), rendered without the base template."""
    return env.get_template(template).render(**context)
