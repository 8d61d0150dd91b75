"""Plant scorecards through the API, on SQLite and PostgreSQL, with completeness from the
ledger's figures in the real InfluxDB: one plant answers in time, the other lets its alarm
escalate; each sees its own scorecard only, headquarters sees both side by side."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.api.app import make_app
from alerting.api.roles import Role
from alerting.api.tokens import create_token
from alerting.console.session import COOKIE
from alerting.lifecycle.machine import Action
from alerting.lifecycle.policies import EscalationConfig
from alerting.records.store import AlarmStore
from plantmesh.connections import InfluxConnection
from tests.support.alarms import T0, Clock, alert_event
from tests.support.servers import influx_auth, influx_query

pytestmark = pytest.mark.integration

PERIOD: dict[str, str | int] = {
    "since": (T0 - timedelta(minutes=1)).isoformat(),
    "until": (T0 + timedelta(hours=1)).isoformat(),
}


def _escalation() -> EscalationConfig:
    hook = [{"type": "webhook", "url": "http://127.0.0.1:9/hook"}]
    return EscalationConfig.model_validate(
        {
            "version": "test",
            "policies": [
                {
                    "name": "instability",
                    "levels": [
                        {"roles": ["operator"], "ack_within_s": 60},
                        {"roles": ["maintenance"], "ack_within_s": 600},
                    ],
                }
            ],
            "contacts": [
                {"plant": "*", "role": "operator", "name": "ops", "channels": hook},
                {"plant": "*", "role": "maintenance", "name": "maint", "channels": hook},
            ],
        }
    )


@pytest.fixture
async def store(engine: AsyncEngine, clock: Clock) -> AlarmStore:
    """plant-a acknowledges after 30 s; plant-b lets level 2 be told and answers after 5 min."""
    store = AlarmStore(engine, clock=clock, escalation=_escalation())
    await store.record(alert_event("a1", plant="plant-a"))
    await store.record(alert_event("b1", plant="plant-b"))
    clock.advance(30)
    await store.act("a1", Action.ACKNOWLEDGE, "user:ops-a")
    clock.advance(31)
    await store.fire_due()
    clock.advance(239)
    await store.act("b1", Action.ACKNOWLEDGE, "user:ops-b")
    return store


@pytest.fixture
def ledger(influx_url: str, influx_database: str) -> InfluxConnection:
    """The ledger's running totals: plant-a's gateway missed 10 of the 600 batches the period
    expected; plant-b's gateway, new in the period, missed none."""
    lines = [
        f"completeness,plant=plant-a,gateway=gw-a batches_expected=100i,batches_received=100i "
        f"{int((T0 - timedelta(hours=1)).timestamp() * 1e9)}",
        f"completeness,plant=plant-a,gateway=gw-a batches_expected=700i,batches_received=690i "
        f"{int((T0 + timedelta(minutes=30)).timestamp() * 1e9)}",
        f"completeness,plant=plant-b,gateway=gw-b batches_expected=300i,batches_received=300i "
        f"{int((T0 + timedelta(minutes=10)).timestamp() * 1e9)}",
    ]
    with httpx.Client(trust_env=False) as client:
        client.post(
            f"{influx_url}/write",
            params={"db": influx_database},
            content="\n".join(lines),
            headers=influx_auth(),
        ).raise_for_status()
    assert influx_query(influx_url, "SELECT count(*) FROM completeness", influx_database)
    return InfluxConnection(url=influx_url, bucket=f"{influx_database}/autogen")


@pytest.fixture
async def client(store: AlarmStore, ledger: InfluxConnection) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(store)
    app.state.influx = ledger
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as client:
        yield client


async def _token(store: AlarmStore, name: str, role: Role, *plants: str) -> dict[str, str]:
    token = await create_token(store.engine, name, role, list(plants), store.clock())
    return {"Authorization": f"Bearer {token}"}


async def test_headquarters_sees_the_plants_side_by_side(
    client: httpx.AsyncClient, store: AlarmStore
) -> None:
    hq = await _token(store, "hq", Role.HQ, "*")
    answer = await client.get("/api/v1/scorecards", headers=hq, params=PERIOD)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["completeness_source"] == "ledger"
    cards = {c["plant"]: c for c in body["plants"]}
    assert set(cards) == {"plant-a", "plant-b"}
    a, b = cards["plant-a"], cards["plant-b"]
    assert (a["alarms"], a["tta_p50_s"], a["acked_in_time_pct"], a["escalated_pct"]) == (
        1,
        30.0,
        100.0,
        0.0,
    )
    assert (b["alarms"], b["tta_p50_s"], b["acked_in_time_pct"], b["escalated_pct"]) == (
        1,
        300.0,
        0.0,
        100.0,
    )
    assert a["completeness_pct"] == pytest.approx(98.333, abs=0.001)
    assert b["completeness_pct"] == 100.0


async def test_the_csv_flags_the_worst_plant_of_each_row(
    client: httpx.AsyncClient, store: AlarmStore
) -> None:
    hq = await _token(store, "hq", Role.HQ, "*")
    answer = await client.get("/api/v1/scorecards.csv", headers=hq, params=PERIOD)
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    table = {row[1]: row for row in csv.reader(io.StringIO(answer.text))}
    assert table["key"][3:] == ["plant-a", "plant-a worst", "plant-b", "plant-b worst"]
    assert table["tta_p50"][3:] == ["30.0", "", "300.0", "yes"]
    assert table["completeness"][4] == "yes"


async def test_a_plant_sees_its_own_scorecard_only(
    client: httpx.AsyncClient, store: AlarmStore
) -> None:
    ops = await _token(store, "ops-a", Role.OPERATOR, "plant-a")
    body = (await client.get("/api/v1/scorecards", headers=ops, params=PERIOD)).json()
    assert [c["plant"] for c in body["plants"]] == ["plant-a"]
    refused = await client.get(
        "/api/v1/scorecards", headers=ops, params={**PERIOD, "plant": "plant-b"}
    )
    assert refused.status_code == 403
    assert (await client.get("/api/v1/scorecards", params=PERIOD)).status_code == 401


async def test_a_trend_splits_the_period(client: httpx.AsyncClient, store: AlarmStore) -> None:
    hq = await _token(store, "hq", Role.HQ, "*")
    body = (
        await client.get("/api/v1/scorecards", headers=hq, params={**PERIOD, "buckets": 2})
    ).json()
    points = body["trend"]["plant-a"]
    assert len(points) == 2
    assert [p["scorecard"]["alarms"] for p in points] == [1, 0]
    backwards = {"since": PERIOD["until"], "until": PERIOD["since"]}
    assert (await client.get("/api/v1/scorecards", headers=hq, params=backwards)).status_code == 422


async def test_the_console_page_shows_the_table_and_its_csv(
    client: httpx.AsyncClient, store: AlarmStore
) -> None:
    hq = await _token(store, "hq-console", Role.HQ, "*")
    client.cookies.set(COOKIE, hq["Authorization"].split()[1])
    page = await client.get("/console/scorecards", params=PERIOD)
    assert page.status_code == 200, page.text
    assert '<th scope="col">plant-a</th><th scope="col">plant-b</th>' in page.text
    tta = page.text.split('data-figure="tta_p50"')[1].split("</tr>")[0]
    assert '<td class="worst">300 s <span class="flag">worst</span></td>' in tta
    assert "Trend per plant" in page.text
    exported = await client.get("/console/scorecards.csv", params=PERIOD)
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.text.startswith("figure,key,unit,plant-a,")
    client.cookies.clear()
    assert (await client.get("/console/scorecards")).status_code in (302, 303, 307)
