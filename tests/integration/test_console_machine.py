"""The console's machine page against a real InfluxDB: a small chart per signal of the
machine's recent readings, the equivalent `plantmesh query series` command, nothing of another
machine, and the API's plant scope."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.api.app import make_app
from alerting.api.roles import Role
from alerting.api.tokens import create_token
from alerting.records.store import AlarmStore
from plantmesh.connections import InfluxConnection
from tests.support.alarms import Clock
from tests.support.servers import influx_auth, influx_query

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]
BASE = "http://console.test"


@pytest.fixture
def influx(influx_url: str, influx_database: str) -> InfluxConnection:
    """Ten minutes of two signals of plant-a/mill-01 and one of another machine."""
    now = time.time_ns()
    lines = []
    for i in range(10):
        ts = now - (10 - i) * 60_000_000_000
        tags = "plant=plant-a,area=milling,line=line1,machine=mill-01"
        lines.append(f"readings,{tags},signal=bearing_temp,unit=degC value={60 + i} {ts}")
        lines.append(f"readings,{tags},signal=vibration,unit=mm/s value={2 + i / 10} {ts}")
        other = "plant=plant-a,area=milling,line=line1,machine=mill-02"
        lines.append(f"readings,{other},signal=spindle_speed value=1500 {ts}")
    with httpx.Client(trust_env=False) as client:
        answer = client.post(
            f"{influx_url}/write",
            params={"db": influx_database},
            content="\n".join(lines),
            headers=influx_auth(),
        )
    assert answer.status_code == 204, answer.text
    assert influx_query(influx_url, "SELECT count(*) FROM readings", influx_database)
    return InfluxConnection(url=influx_url, bucket=f"{influx_database}/autogen")


@pytest.fixture
async def client(engine: AsyncEngine, influx: InfluxConnection) -> AsyncIterator[httpx.AsyncClient]:
    store = AlarmStore(engine, clock=Clock())
    token = await create_token(engine, "ops-a", Role.OPERATOR, ["plant-a"], store.clock())
    transport = httpx.ASGITransport(app=make_app(store, influx))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        login = await client.post("/console/login", data={"token": token}, headers={"Origin": BASE})
        assert login.status_code == 303
        yield client


async def test_a_machine_page_charts_each_signal_with_its_command(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/console/machines/plant-a/mill-01?since=1h")
    assert page.status_code == 200
    assert page.text.count('<polyline class="series"') == 2
    assert "bearing_temp" in page.text
    assert "vibration" in page.text
    assert "spindle_speed" not in page.text  # another machine's signal
    assert (
        "plantmesh query series --signal bearing_temp --since 1h --every 1m "
        "--plant plant-a --machine mill-01"
    ) in page.text
    assert "10 points" in page.text


async def test_a_machine_outside_the_scope_is_refused_and_an_idle_one_says_so(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/console/machines/plant-b/mill-01")).status_code == 403
    idle = await client.get("/console/machines/plant-a/press-09")
    assert idle.status_code == 200
    assert "No readings of plant-a/press-09" in idle.text
