"""Logging in with an API token (`plantmesh alerting token create`) and out again."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alerting.api.auth import store_of
from alerting.api.tokens import principal_of
from alerting.console.guard import clear_session, form_of, set_session, viewer_of
from alerting.console.pages import render
from alerting.console.session import HOME, LOGIN, safe_next

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
async def home() -> Response:
    return RedirectResponse(HOME, status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None) -> Response:
    if await viewer_of(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", None, title="Log in", target=safe_next(next), error="")


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    fields = await form_of(request, logged_in=False)
    token = fields.get("token", "").strip()
    target = safe_next(fields.get("next"))
    found = await principal_of(store_of(request).engine, token) if token else None
    if found is None:
        error = "Unknown or revoked token." if token else "Paste your API token."
        return render(
            request, "login.html", None, title="Log in", target=target, error=error, status=401
        )
    response = RedirectResponse(target, status_code=303)
    set_session(response, token, request.url.scheme == "https")
    return response


@router.post("/logout", response_class=HTMLResponse)
async def logout(request: Request) -> Response:
    await form_of(request)
    response = RedirectResponse(LOGIN, status_code=303)
    clear_session(response, request.url.scheme == "https")
    return response
