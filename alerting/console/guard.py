"""Who is looking at the console, and what stops a request before a page is made: the session
cookie looked up with the API's own token lookup on every request (a revoked token is out at
once), a redirect to the login form without one, the origin and CSRF checks of every POST, and
an error page (403, 404 ...) for what the API would refuse."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alerting.api.auth import store_of
from alerting.api.tokens import Principal, principal_of
from alerting.console.pages import render
from alerting.console.session import (
    COOKIE,
    COOKIE_PATH,
    CSRF_FIELD,
    LOGIN,
    post_allowed,
)

MAX_FORM_BYTES = 64 * 1024


class LoginRequiredError(Exception):
    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


class ConsoleError(Exception):
    """A refusal shown as a page: 403 outside the plants or the role, 404 unknown ..."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def refused(exc: HTTPException) -> ConsoleError:
    return ConsoleError(exc.status_code, str(exc.detail))


async def viewer_of(request: Request) -> Principal | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    return await principal_of(store_of(request).engine, token)


async def _require(request: Request) -> Principal:
    found = await viewer_of(request)
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequiredError(target)
    request.state.viewer = found
    return found


Viewer = Annotated[Principal, Depends(_require)]
"""A page's logged-in user; without a valid session the page redirects to the login form."""


def own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


async def form_of(request: Request, logged_in: bool = True) -> dict[str, str]:
    """The POSTed form, once its origin (and, logged in, its CSRF token) checked out."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ConsoleError(413, "the form is too large")
    fields = {k: v[0] for k, v in parse_qs(body.decode(errors="replace"), True).items()}
    session = request.cookies.get(COOKIE) if logged_in else None
    if logged_in and not session:
        raise ConsoleError(403, "no session: log in again")
    if not post_allowed(request.headers, own_origin(request), session, fields.get(CSRF_FIELD)):
        raise ConsoleError(403, "refused: the request did not come from this console's own page")
    return fields


def set_session(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(
        COOKIE, token, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure
    )


def clear_session(response: Response, secure: bool) -> None:
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure
    )


async def login_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequiredError)
    return RedirectResponse(f"{LOGIN}?next={quote(exc.target, safe='/')}", status_code=303)


async def error_page(request: Request, exc: Exception) -> HTMLResponse:
    assert isinstance(exc, ConsoleError)
    viewer: Principal | None = getattr(request.state, "viewer", None)
    title = {403: "Not allowed", 404: "Not found"}.get(exc.status, "Refused")
    return render(
        request, "error.html", viewer, title=title, status=exc.status, message=exc.message
    )
