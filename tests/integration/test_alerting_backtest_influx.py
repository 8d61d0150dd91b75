"""Backtests over a known history in the real InfluxDB (a database of the test's own, dropped
afterwards): a threshold rule over a bearing temperature that crosses its limit exactly twice on
one press and once on a press of another plant gives those alerts at the known times, through the
command line and through `POST /api/v1/backtests`; with the simulator's truth, precision and
recall 1.0 and a detection latency of the on-delay."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from alerting.api import backtest_routes
from alerting.api.app import make_app
from alerting.api.roles import Role
from alerting.api.tokens import create_token
from alerting.cli import register
from alerting.console.session import COOKIE
from alerting.records.store import AlarmStore
from plantmesh import cli
from plantmesh.connections import InfluxConnection
from plantmesh.contracts import AlertEvent, decode
from plantmesh.fleet import Fleet
from plantmesh.scoring.truth import TruthRecord
from tests.support.alarms import Clock, migrated
from tests.support.servers import influx_auth, influx_query

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PERIOD = {"from": T0.isoformat(), "to": (T0 + timedelta(minutes=10)).isoformat()}
RULES = """rules:
  - name: bearing-overtemp
    type: threshold
    issue_type: bearing-overtemperature
    signal: bearing_temp
    above: 90.0
    deadband: 5.0
    on_delay_s: 5.0
    severity: high
"""
HOT = {"plant-a": [(100, 130), (300, 320)], "plant-b": [(200, 230)]}
"""Seconds after T0 each plant's press-01 runs at 95 degC (80 otherwise): raised 5 s after each
start (the on-delay), cleared at each end (below 85)."""


def _line(plant: str, machine: str, t: int, value: float) -> str:
    return (
        f"readings,area=stamping,line=line1,machine={machine},plant={plant},signal=bearing_temp,"
        f'unit=degC value={value},status_code=0i,quality="good" {(int(T0.timestamp()) + t) * 10**9}'
    )


@pytest.fixture
def history(influx_url: str, influx_database: str) -> InfluxConnection:
    """10 minutes at 1 Hz of press-01 (HOT) and press-02 (steady) in two plants, and one row
    without a `line` tag, which the backtest must count as bad."""
    lines = [
        _line(plant, "press-01", t, 95.0 if any(a <= t < b for a, b in spans) else 80.0)
        for plant, spans in HOT.items()
        for t in range(600)
    ]
    lines += [_line(plant, "press-02", t, 70.0) for plant in HOT for t in range(0, 600, 10)]
    lines.append(_line("plant-a", "press-03", 7, 1.0).replace(",line=line1", ""))
    with httpx.Client(trust_env=False) as client:
        answer = client.post(
            f"{influx_url}/write",
            params={"db": influx_database},
            content="\n".join(lines),
            headers=influx_auth(),
        )
        answer.raise_for_status()
    counted = influx_query(influx_url, "SELECT count(value) FROM readings", influx_database)
    assert counted["results"][0]["series"][0]["values"][0][1] == len(lines)
    return InfluxConnection(url=influx_url, bucket=f"{influx_database}/autogen")


def _truth(plant: str) -> list[str]:
    """The simulator's truth for `plant`'s excursions, as JSON lines."""
    return [
        json.dumps(
            TruthRecord(
                event=i,
                kind="excursion",
                plant=plant,
                area="stamping",
                line="line1",
                machine="press-01",
                signal="bearing_temp",
                protocol="opcua",
                start=T0 + timedelta(seconds=start),
                end=T0 + timedelta(seconds=end),
                start_s=start,
                end_s=end,
                severity="high",
                should_alert=True,
            ).to_json()
        )
        for i, (start, end) in enumerate(HOT[plant])
    ]


def _times(alerts: list[dict[str, Any]]) -> list[tuple[str, str, float]]:
    return [
        (a["plant"], a["kind"], (datetime.fromisoformat(a["at"]) - T0).total_seconds())
        for a in alerts
    ]


PLANT_A = [
    ("plant-a", "raised", 105.0),
    ("plant-a", "cleared", 130.0),
    ("plant-a", "raised", 305.0),
    ("plant-a", "cleared", 320.0),
]


def test_the_cli_finds_the_two_crossings_and_scores_them_against_the_truth(
    history: InfluxConnection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli, "setup_logging", lambda *args: None)  # no handler on capsys' stream
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "truth.jsonl").write_text("\n".join(_truth("plant-a")) + "\n")
    out = tmp_path / "out" / "alerts.jsonl"
    argv = [
        "alerts", "backtest", "--rules", str(tmp_path / "rules.yaml"),
        "--from", PERIOD["from"], "--to", PERIOD["to"], "--plant", "plant-a",
        "--influx-url", history.url, "--database", history.database,
        "--truth", str(tmp_path / "truth.jsonl"), "--out", str(out), "--json",
        "--max-rows", "500",
    ]  # fmt: skip
    assert cli.dispatch(cli.build_parser([("alerting", register)]), argv) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert _times(report["alerts"]) == PLANT_A
    assert {a["machine"] for a in report["alerts"]} == {"press-01"}
    assert report["input"]["readings"] == 600 + 60  # plant-a only: press-01 and press-02
    assert report["input"]["bad_rows"] == {"missing tag line": 1}
    assert report["alarm_load"]["alerts"] == 2
    truth = report["truth"]["overall"]
    assert (truth["precision"], truth["recall"]) == (1.0, 1.0)
    assert (truth["latency_p50_s"], truth["latency_p90_s"]) == (5.0, 5.0)
    written = [decode(AlertEvent, line) for line in out.read_bytes().splitlines()]
    assert [(e.kind.value, e.at) for e in written] == [
        (kind, T0 + timedelta(seconds=at)) for _, kind, at in PLANT_A
    ]
    assert "backtest:" in captured.err  # progress on stderr, the report alone on stdout


Tokens = Callable[[Role, list[str]], Any]


@pytest.fixture
async def api(
    history: InfluxConnection, tmp_path: Path
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, dict[Role, dict[str, str]]]]:
    """The backtest router on an app of its own (tokens on SQLite), InfluxDB in app.state."""
    async with migrated(f"sqlite:///{tmp_path / 'alarms.db'}") as engine:
        clock = Clock()
        app = FastAPI()
        app.include_router(backtest_routes.router)
        app.state.store = AlarmStore(engine, clock=clock)
        app.state.influx = history
        scopes = {Role.HQ: ["*"], Role.PLANT_MANAGER: ["plant-b"], Role.OPERATOR: ["*"]}
        tokens = {
            role: {
                "Authorization": "Bearer "
                + await create_token(engine, role.value, role, plants, clock())
            }
            for role, plants in scopes.items()
        }
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield app, client, tokens


async def test_the_api_gives_the_report_within_the_tokens_plants(
    api: tuple[FastAPI, httpx.AsyncClient, dict[Role, dict[str, str]]],
) -> None:
    _, client, tokens = api
    body = {**PERIOD, "rules": RULES, "truth": "\n".join(_truth("plant-a") + _truth("plant-b"))}
    answer = await client.post("/api/v1/backtests", json=body, headers=tokens[Role.HQ])
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert sorted(_times(report["alerts"]), key=lambda t: t[2]) == sorted(
        [*PLANT_A, ("plant-b", "raised", 205.0), ("plant-b", "cleared", 230.0)],
        key=lambda t: t[2],
    )
    overall = report["truth"]["overall"]
    assert (overall["detected"], overall["precision"], overall["recall"]) == (3, 1.0, 1.0)

    manager = await client.post("/api/v1/backtests", json=body, headers=tokens[Role.PLANT_MANAGER])
    assert manager.status_code == 200, manager.text
    assert _times(manager.json()["alerts"]) == [
        ("plant-b", "raised", 205.0),
        ("plant-b", "cleared", 230.0),
    ]
    outside = {**body, "plants": ["plant-a"]}
    refused = await client.post(
        "/api/v1/backtests", json=outside, headers=tokens[Role.PLANT_MANAGER]
    )
    assert refused.status_code == 403


async def test_the_api_refuses_roles_bad_rules_and_works_only_with_influxdb(
    api: tuple[FastAPI, httpx.AsyncClient, dict[Role, dict[str, str]]],
) -> None:
    app, client, tokens = api
    body = {**PERIOD, "rules": RULES}
    operator = await client.post("/api/v1/backtests", json=body, headers=tokens[Role.OPERATOR])
    assert operator.status_code == 403
    assert "may not run backtests" in operator.json()["detail"]
    bad = {**body, "rules": RULES.replace("above: 90.0", "abov: 90.0")}
    refused = await client.post("/api/v1/backtests", json=bad, headers=tokens[Role.HQ])
    assert refused.status_code == 422
    assert "rules[0]" in refused.json()["detail"]
    app.state.influx = None
    unavailable = await client.post("/api/v1/backtests", json=body, headers=tokens[Role.HQ])
    assert unavailable.status_code == 503
    assert "InfluxDB" in unavailable.json()["detail"]


async def test_the_console_shows_a_rules_backtest_before_it_is_enabled(
    history: InfluxConnection, tmp_path: Path
) -> None:
    async with migrated(f"sqlite:///{tmp_path / 'alarms.db'}") as engine:
        store = AlarmStore(engine, clock=Clock())
        app = make_app(store, history)
        lead = await create_token(engine, "lead-b", Role.PLANT_MANAGER, ["plant-b"], store.clock())
        ops = await create_token(engine, "ops-b", Role.OPERATOR, ["plant-b"], store.clock())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
            client.cookies.set(COOKIE, lead)
            form = await client.get("/console/backtest")
            assert form.status_code == 200
            csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', form.text)
            assert csrf, form.text
            fields = {
                "csrf": csrf[1],
                "rules": RULES,
                "from": T0.strftime("%Y-%m-%dT%H:%M"),
                "to": (T0 + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M"),
            }
            same = {"Origin": "http://console"}
            done = await client.post("/console/backtest", data=fields, headers=same)
            assert done.status_code == 200, done.text
            assert "Would have raised 1 alert (1 cleared)" in done.text  # plant-b's only
            assert "plant-b/press-01/bearing_temp" in done.text
            bad = await client.post(
                "/console/backtest", data={**fields, "rules": "rules: [1]"}, headers=same
            )
            assert (bad.status_code, "Not done:" in bad.text) == (422, True)

            client.cookies.set(COOKIE, ops)
            page = await client.get("/console/backtest")
            assert "may not run backtests" in page.text
            assert "Run backtest" not in page.text


async def test_rules_for_a_machine_class_need_the_registry_the_service_was_given(
    api: tuple[FastAPI, httpx.AsyncClient, dict[Role, dict[str, str]]],
) -> None:
    app, client, tokens = api
    rules = RULES + "    machine_classes: [hydraulic_press]\n"
    body = {**PERIOD, "rules": rules, "plants": ["plant-b"]}
    blind = await client.post("/api/v1/backtests", json=body, headers=tokens[Role.HQ])
    assert blind.json()["raised"] == 0  # no class stored with the readings: nothing matches
    app.state.fleet = Fleet.from_plants({"plant-b": {"press-01": "hydraulic_press"}})
    seen = await client.post("/api/v1/backtests", json=body, headers=tokens[Role.HQ])
    assert _times(seen.json()["alerts"]) == [
        ("plant-b", "raised", 205.0),
        ("plant-b", "cleared", 230.0),
    ]
