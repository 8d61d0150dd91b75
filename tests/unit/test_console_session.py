"""The console's login and CSRF rules: the form token belongs to one session, POSTs must come
from the console's own origin, and login never redirects off the console."""

from __future__ import annotations

import pytest

from alerting.console.session import (
    HOME,
    csrf_ok,
    csrf_token,
    origin_of,
    post_allowed,
    safe_next,
    same_origin,
)

OWN = "https://alarms.plant.example"


def test_the_csrf_token_is_the_sessions_own() -> None:
    token = csrf_token("pmt_one")
    assert len(token) == 64
    assert token == csrf_token("pmt_one")
    assert token != csrf_token("pmt_two")
    assert "pmt_one" not in token
    assert csrf_ok("pmt_one", token)
    assert not csrf_ok("pmt_two", token)
    assert not csrf_ok("pmt_one", None)
    assert not csrf_ok("pmt_one", "")


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({"origin": OWN}, True),
        ({"origin": OWN.upper()}, True),
        ({"origin": "https://evil.example"}, False),
        ({"origin": "http://alarms.plant.example"}, False),  # another scheme: another origin
        ({"origin": "https://alarms.plant.example:8443"}, False),
        ({"origin": "null"}, False),
        ({"referer": f"{OWN}/console/alerts/a1"}, True),
        ({"referer": "https://alarms.plant.example.evil.example/x"}, False),
        ({"origin": "https://evil.example", "referer": f"{OWN}/console/x"}, False),
        ({}, False),
    ],
)
def test_only_our_own_origin_may_post(headers: dict[str, str], ok: bool) -> None:
    assert same_origin(headers, OWN) is ok


def test_a_post_needs_the_origin_and_once_logged_in_the_token() -> None:
    mine = {"origin": OWN}
    assert post_allowed(mine, OWN, None, None)  # the login form: no session yet
    assert post_allowed(mine, OWN, "pmt_s", csrf_token("pmt_s"))
    assert not post_allowed(mine, OWN, "pmt_s", None)
    assert not post_allowed(mine, OWN, "pmt_s", csrf_token("pmt_other"))
    assert not post_allowed({"origin": "https://evil.example"}, OWN, "pmt_s", csrf_token("pmt_s"))


@pytest.mark.parametrize(
    ("target", "goes"),
    [
        ("/console/alerts/a1", "/console/alerts/a1"),
        ("/console/incidents?open=true", "/console/incidents?open=true"),
        (None, HOME),
        ("", HOME),
        ("https://evil.example/console/", HOME),
        ("//evil.example/console/x", HOME),
        ("/console/\\evil", HOME),
        ("/api/v1/alarms", HOME),
        ("/console/login?next=/console/x", HOME),
    ],
)
def test_after_login_only_console_pages(target: str | None, goes: str) -> None:
    assert safe_next(target) == goes


def test_origin_of_a_url() -> None:
    assert origin_of("https://Host.example:8443/a?b") == "https://host.example:8443"
    assert origin_of("/relative") is None
