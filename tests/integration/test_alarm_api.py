"""The alarm API in process (httpx over ASGI) on SQLite and PostgreSQL: tokens with a role and a
plant scope, lists that never show another plant, 403 outside the scope or the role, 409 for a
refused lifecycle step, every action in the trail with its actor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.api.app import make_app
from alerting.api.roles import Role
from alerting.api.tokens import create_token, revoke_token
from alerting.records import maintenance
from alerting.records.store import AlarmStore
from tests.support.alarms import Clock, alert_event

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(engine: AsyncEngine) -> AlarmStore:
    store = AlarmStore(engine, clock=Clock())
    await store.record(alert_event("a1", plant="plant-a"))
    await store.record(alert_event("b1", plant="plant-b"))
    return store


@pytest.fixture
async def client(store: AlarmStore) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def _token(store: AlarmStore, name: str, role: Role, *plants: str) -> dict[str, str]:
    token = await create_token(store.engine, name, role, list(plants), store.clock())
    return {"Authorization": f"Bearer {token}"}


async def test_without_a_valid_token_nothing_is_shown(
    client: httpx.AsyncClient, store: AlarmStore
) -> None:
    assert (await client.get("/api/v1/alarms")).status_code == 401
    bad = {"Authorization": "Bearer pmt_not-a-token"}
    assert (await client.get("/api/v1/alarms", headers=bad)).status_code == 401
    ops = await _token(store, "ops-a", Role.OPERATOR, "plant-a")
    assert (await client.get("/api/v1/alarms", headers=ops)).status_code == 200
    await revoke_token(store.engine, "ops-a", store.clock())
    assert (await client.get("/api/v1/alarms", headers=ops)).status_code == 401


async def test_an_operator_sees_and_acts_on_its_own_plant_only(
    client: httpx.AsyncClient, store: AlarmStore
) -> None:
    ops = await _token(store, "ops-a", Role.OPERATOR, "plant-a")
    listed = (await client.get("/api/v1/alarms", headers=ops)).json()
    assert [a["id"] for a in listed] == ["a1"]
    assert (await client.get("/api/v1/alarms?plant=plant-b", headers=ops)).json() == []
    refused = await client.post("/api/v1/alarms/b1/acknowledge", headers=ops)
    assert refused.status_code == 403
    assert (await client.get("/api/v1/alarms/b1", headers=ops)).status_code == 403

    acked = await client.post(
        "/api/v1/alarms/a1/acknowledge", headers=ops, json={"comment": "on my way"}
    )
    assert acked.status_code == 200
    body = acked.json()
    assert body["state"] == "active_acknowledged"
    assert body["timeline"][-1]["actor"] == "user:ops-a"
    assert body["timeline"][-1]["text"] == "on my way"
    assert body["time_to_acknowledge_s"] == 0.0
    again = await client.post("/api/v1/alarms/a1/acknowledge", headers=ops)
    assert (again.status_code, again.json()["detail"]) == (409, "already acknowledged")
    assert (await client.post("/api/v1/alarms/a1/resolve", headers=ops)).status_code == 403


async def test_roles_decide_the_actions(client: httpx.AsyncClient, store: AlarmStore) -> None:
    hq = await _token(store, "hq", Role.HQ, "*")
    assert {a["id"] for a in (await client.get("/api/v1/alarms", headers=hq)).json()} == {
        "a1",
        "b1",
    }
    shelve = {"reason": "known issue", "duration_s": 600}
    assert (
        await client.post("/api/v1/alarms/a1/shelve", headers=hq, json=shelve)
    ).status_code == 403
    said = await client.post(
        "/api/v1/alarms/a1/comment", headers=hq, json={"text": "seen in 3 plants"}
    )
    assert said.status_code == 200
    lead = await _token(store, "lead-a", Role.PLANT_MANAGER, "plant-a")
    shelved = await client.post("/api/v1/alarms/a1/shelve", headers=lead, json=shelve)
    assert (shelved.status_code, shelved.json()["shelving"]) == (200, "timed")
    too_long = {"reason": "forever", "duration_s": 9 * 3600}
    answer = await client.post("/api/v1/alarms/b1/shelve", headers=lead, json=too_long)
    assert answer.status_code == 403  # plant-b: outside the scope comes first
    assigned = await client.post(
        "/api/v1/alarms/a1/assign", headers=lead, json={"assignee": "tech-7"}
    )
    assert assigned.json()["assignee"] == "tech-7"
    actors = [(e["action"], e["actor"]) for e in assigned.json()["timeline"]]
    assert actors == [
        ("raise", "detection"),
        ("comment", "user:hq"),
        ("shelve", "user:lead-a"),
        ("assign", "user:lead-a"),
    ]


async def test_bad_requests_are_refused_with_reasons(
    client: httpx.AsyncClient, store: AlarmStore
) -> None:
    admin = await _token(store, "admin", Role.ADMIN, "*")
    both = {"reason": "x", "duration_s": 60, "one_shot": True}
    assert (
        await client.post("/api/v1/alarms/a1/shelve", headers=admin, json=both)
    ).status_code == 422
    too_long = {"reason": "x", "duration_s": 9 * 3600}
    answer = await client.post("/api/v1/alarms/a1/shelve", headers=admin, json=too_long)
    assert answer.status_code == 409
    assert "limited to" in answer.json()["detail"]
    assert (await client.get("/api/v1/alarms/nope", headers=admin)).status_code == 404
    unknown_key = await client.post("/api/v1/alarms/a1/comment", headers=admin, json={"txt": "x"})
    assert unknown_key.status_code == 422
    assert (await client.get("/api/v1/alarms?limit=0", headers=admin)).status_code == 422


async def test_openapi_describes_every_route(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert {"/api/v1/alarms", "/api/v1/alarms/{alarm_id}/acknowledge"} <= set(spec["paths"])
    assert (await client.get("/healthz")).json() == {"ok": True}


async def test_planned_maintenance_suppresses_a_machines_alarms_for_its_window(
    client: httpx.AsyncClient, store: AlarmStore
) -> None:
    lead = await _token(store, "lead-a", Role.MAINTENANCE, "plant-a")
    ops = await _token(store, "ops-a", Role.OPERATOR, "plant-a")
    body = {"plant": "plant-a", "machine": "mill-01", "duration_s": 3600, "reason": "bearing swap"}
    assert (await client.post("/api/v1/maintenance", headers=ops, json=body)).status_code == 403
    other = {**body, "plant": "plant-b"}
    assert (await client.post("/api/v1/maintenance", headers=lead, json=other)).status_code == 403
    started = await client.post("/api/v1/maintenance", headers=lead, json=body)
    assert (started.status_code, started.json()["suppressed"]) == (200, 1)
    alarm = (await client.get("/api/v1/alarms/a1", headers=lead)).json()
    assert alarm["suppressed_by"].startswith("planned maintenance of plant-a/mill-01")
    # Raised during the window: born suppressed.
    await store.record(alert_event("a2", plant="plant-a", rule="mill-temperature"))
    born = (await client.get("/api/v1/alarms/a2", headers=lead)).json()
    assert born["suppressed_by"] == alarm["suppressed_by"]
    window = started.json()["id"]
    listed = (await client.get("/api/v1/maintenance", headers=ops)).json()
    assert [w["id"] for w in listed] == [window]
    ended = await client.post(f"/api/v1/maintenance/{window}/end", headers=lead)
    assert (ended.status_code, ended.json()["suppressed"]) == (200, 2)
    assert (await client.get("/api/v1/alarms/a1", headers=lead)).json()["suppressed_by"] is None
    again = await client.post(f"/api/v1/maintenance/{window}/end", headers=lead)
    assert again.status_code == 409


async def test_a_window_ends_by_itself_when_its_time_is_up(store: AlarmStore) -> None:
    clock = store.clock
    assert isinstance(clock, Clock)
    window, suppressed = await maintenance.start(
        store, "plant-a", "mill-01", clock.now + timedelta(minutes=30), "oil change", "user:lead"
    )
    assert [t.alarm_id for t in suppressed] == ["a1"]
    assert await maintenance.end_due(store) == []
    clock.advance(1800)
    shown = await maintenance.end_due(store)
    assert [(t.alarm_id, t.action) for t in shown] == [("a1", "unsuppress")]
    assert (await maintenance.get_window(store, window.id)).ended_at == clock.now
