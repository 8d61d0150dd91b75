"""The console's session: the API token the user pasted, kept in an HttpOnly, SameSite=Strict
cookie (scripts cannot read it, other sites' requests do not carry it), and what protects the
console's POSTs from cross-site requests besides SameSite: the request's Origin (or Referer)
must be the console's own, and the form must carry a CSRF token derived from the session's
token (an attacker's page can neither read the cookie nor compute it).

Pure: no I/O, so the rules are unit-tested on their own."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit

COOKIE = "plantmesh_console"
COOKIE_PATH = "/console"
CSRF_FIELD = "csrf"
HOME = "/console/alerts"
LOGIN = "/console/login"
_CSRF_KEY = b"plantmesh console csrf v1"


def csrf_token(session_token: str) -> str:
    """The form token of a session: a keyed hash of its (secret, HttpOnly) API token."""
    return hmac.new(_CSRF_KEY, session_token.encode(), hashlib.sha256).hexdigest()


def csrf_ok(session_token: str, submitted: str | None) -> bool:
    return submitted is not None and hmac.compare_digest(csrf_token(session_token), submitted)


def origin_of(url: str) -> str | None:
    """scheme://host[:port] of a URL (None when it has none)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(headers: Mapping[str, str], own: str) -> bool:
    """Did the browser say the request came from our own pages? Origin when sent (every
    current browser sends it on POST), else Referer; neither: refused."""
    own = own.rstrip("/").lower()
    origin = headers.get("origin")
    if origin is not None:
        return origin != "null" and origin.rstrip("/").lower() == own
    referer = headers.get("referer")
    return referer is not None and origin_of(referer) == own


def post_allowed(
    headers: Mapping[str, str], own: str, session_token: str | None, submitted: str | None
) -> bool:
    """A console POST goes through when it comes from our origin and, once logged in, carries
    the session's CSRF token (login itself has no session yet: the origin check guards it)."""
    if not same_origin(headers, own):
        return False
    return session_token is None or csrf_ok(session_token, submitted)


def safe_next(target: str | None) -> str:
    """Where to go after login: a console path only (no open redirect to another site)."""
    if (
        not target
        or not target.startswith(COOKIE_PATH + "/")
        or target.startswith("//")
        or "\\" in target
        or target.startswith(LOGIN)
    ):
        return HOME
    return target
