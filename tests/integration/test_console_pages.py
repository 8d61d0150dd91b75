"""The web console in process (httpx over ASGI) on SQLite and PostgreSQL: login with an API
token into an HttpOnly SameSite=Strict cookie, redirects without one, the CSRF and origin checks
of every POST, the API's plant scope and roles on every page, actions that land in the trail,
refusals shown with their reason, the live stream's first message."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.api.app import make_app
from alerting.api.roles import Role
from alerting.api.tokens import create_token, revoke_token
from alerting.console.session import COOKIE
from alerting.records.queries import trail_of
from alerting.records.store import AlarmStore
from tests.support.alarms import Clock, alert_event

pytestmark = pytest.mark.integration
BASE = "http://console.test"
SAME = {"Origin": BASE}


@pytest.fixture
async def store(engine: AsyncEngine) -> AlarmStore:
    store = AlarmStore(engine, clock=Clock())
    await store.record(alert_event("a1", plant="plant-a"))
    await store.record(alert_event("b1", plant="plant-b"))
    return store


@pytest.fixture
async def client(store: AlarmStore) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(store))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def _login(
    client: httpx.AsyncClient, store: AlarmStore, name: str, role: Role, *plants: str
) -> str:
    token = await create_token(store.engine, name, role, list(plants), store.clock())
    answer = await client.post("/console/login", data={"token": token}, headers=SAME)
    assert answer.status_code == 303, answer.text
    return token


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def test_pages_need_a_session_and_login_sets_a_strict_cookie(
    client: httpx.AsyncClient, store: AlarmStore
) -> None:
    away = await client.get("/console/alerts/a1")
    assert away.status_code == 303
    assert away.headers["location"] == "/console/login?next=/console/alerts/a1"
    bad = await client.post("/console/login", data={"token": "pmt_nope"}, headers=SAME)
    assert bad.status_code == 401
    assert "Unknown or revoked token" in bad.text
    token = await create_token(store.engine, "ops-a", Role.OPERATOR, ["plant-a"], store.clock())
    cross = await client.post(
        "/console/login", data={"token": token}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    done = await client.post(
        "/console/login", data={"token": token, "next": "https://evil.example/x"}, headers=SAME
    )
    assert (done.status_code, done.headers["location"]) == (303, "/console/alerts")
    cookie = done.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/console" in cookie
    page = await client.get("/console/alerts")
    assert page.status_code == 200
    assert "ops-a" in page.text
    assert "content-security-policy" in page.headers
    await revoke_token(store.engine, "ops-a", store.clock())
    assert (await client.get("/console/alerts")).status_code == 303


async def test_an_operator_sees_and_acts_on_its_own_plant_only(
    client: httpx.AsyncClient, store: AlarmStore
) -> None:
    await _login(client, store, "ops-a", Role.OPERATOR, "plant-a")
    board = (await client.get("/console/alerts")).text
    assert 'data-alarm-id="a1"' in board
    assert 'data-alarm-id="b1"' not in board
    assert "plant-b" not in board
    other = await client.get("/console/alerts/b1")
    assert other.status_code == 403
    assert "outside this token" in other.text
    page = (await client.get("/console/alerts/a1")).text
    assert "/acknowledge" in page
    assert "/shelve" in page
    assert "/resolve" not in page  # operators may not resolve: no button
    csrf = _csrf(page)
    refused = await client.post("/console/alerts/b1/acknowledge", data={"csrf": csrf}, headers=SAME)
    assert refused.status_code == 403
    acked = await client.post(
        "/console/alerts/a1/acknowledge", data={"csrf": csrf, "comment": "on my way"}, headers=SAME
    )
    assert acked.status_code == 303
    trail = await trail_of(store.engine, "a1")
    assert (trail[-1].action, trail[-1].actor, trail[-1].text) == (
        "acknowledge",
        "user:ops-a",
        "on my way",
    )
    again = await client.post("/console/alerts/a1/acknowledge", data={"csrf": csrf}, headers=SAME)
    assert again.status_code == 409
    assert "Not done: already acknowledged" in again.text
    shelve = {"csrf": csrf, "reason": "known", "duration": "600"}
    too_long = await client.post("/console/alerts/a1/shelve", data=shelve, headers=SAME)
    assert too_long.status_code in (409, 422)
    assert "Not done" in too_long.text


async def test_posts_without_the_csrf_token_or_from_elsewhere_are_refused(
    client: httpx.AsyncClient, store: AlarmStore
) -> None:
    await _login(client, store, "lead-a", Role.MAINTENANCE, "plant-a")
    csrf = _csrf((await client.get("/console/alerts/a1")).text)
    form = {"csrf": csrf, "text": "x"}
    assert (await client.post("/console/alerts/a1/comment", data=form)).status_code == 403
    evil = {"Origin": "https://evil.example"}
    assert (
        await client.post("/console/alerts/a1/comment", data=form, headers=evil)
    ).status_code == 403
    no_token = {"text": "x"}
    assert (
        await client.post("/console/alerts/a1/comment", data=no_token, headers=SAME)
    ).status_code == 403
    via_referer = {"Referer": f"{BASE}/console/alerts/a1"}
    said = await client.post("/console/alerts/a1/comment", data=form, headers=via_referer)
    assert said.status_code == 303
    assert [t.action for t in await trail_of(store.engine, "a1")] == ["raise", "comment"]
    logout = await client.post("/console/logout", data={"csrf": csrf}, headers=SAME)
    assert logout.status_code == 303
    assert (await client.get("/console/alerts")).status_code == 303


async def test_headquarters_sees_every_plant_and_the_stream_sends_the_board(
    client: httpx.AsyncClient, store: AlarmStore
) -> None:
    token = await _login(client, store, "hq", Role.HQ, "*")
    board = (await client.get("/console/alerts")).text
    assert 'data-alarm-id="a1"' in board
    assert 'data-alarm-id="b1"' in board
    page = (await client.get("/console/alerts/b1")).text
    assert "/acknowledge" in page
    assert "/shelve" not in page
    assert "/comment" in page
    assert '<svg class="chart"' in page
    machine = await client.get("/console/machines/plant-a/mill-01")
    assert machine.status_code == 200
    assert "No InfluxDB configured" in machine.text
    incidents = await client.get("/console/incidents")
    assert incidents.status_code == 200
    assert "No network incidents" in incidents.text
    assert client.cookies.get(COOKIE) == token
    client.cookies.clear()
    assert (await client.get("/console/events")).status_code == 204  # no session: no stream
