"""The alarm service takes network incidents from incidents.events beside alert events from
alerts.events (real Kafka, both databases): the incident becomes one alarm of the network plant,
headquarters is told when it opens and when a plant joins, the API lists and shows it with its
explanation and its members' own alarms (linked both ways), within each token's plants, and
`plantmesh incidents` prints the same."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from alerting.alarm_service.config import load_alarm_config
from alerting.alarm_service.service import AlarmService
from alerting.api.roles import Role
from alerting.api.tokens import create_token
from alerting.incidents.correlator import Correlator
from alerting.incidents.policy import Correlation, CorrelationConfig
from alerting.incidents.updates import to_update
from plantmesh.contracts import CONTRACT_HEADER, INCIDENT_CONTRACT, AlertEvent, encode
from plantmesh.fleet import Fleet
from plantmesh.topics import Topics
from tests.support.alarm_service import send
from tests.support.alarms import alert_event
from tests.support.kafka import kafka_options
from tests.support.receivers import HttpReceiver
from tests.support.waiting import async_wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TERMS = Correlation(min_plants=2, min_machines=2, window_s=1800, hold_s=60)


def write_config(tmp_path: Path, namespace: str, kafka: str, database: str, hooks: str) -> Path:
    def hook(name: str) -> list[dict[str, str]]:
        return [{"type": "webhook", "url": f"{hooks}/{name}"}]

    escalation = {
        "version": "t",
        "policies": [
            {"name": "local", "levels": [{"roles": ["operator"], "ack_within_s": 600}]},
            {"name": "network", "scope": "network",
             "levels": [{"roles": ["hq-reliability"], "ack_within_s": 600}]},
        ],
        "contacts": [
            {"plant": "*", "role": "operator", "name": "ops", "channels": hook("ops")},
            {"plant": "*", "role": "hq-reliability", "name": "hq", "channels": hook("hq")},
        ],
    }  # fmt: skip
    (tmp_path / "escalation.yaml").write_text(yaml.safe_dump(escalation))
    config = {
        "namespace": namespace,
        "kafka": {"bootstrap": kafka},
        "database": {"url": database},
        "escalation": "escalation.yaml",
        "api": {"port": 0},
        "tick_s": 0.2,
        "backoff": {"initial_s": 0.1, "max_s": 1},
    }
    path = tmp_path / "alarms.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def incidents_cli(api: str, token: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "plantmesh.cli", "incidents", "--api", api, "--token", token, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
async def service(
    tmp_path: Path, namespace: str, kafka_bootstrap: str, database_url: str, http: HttpReceiver
) -> AsyncIterator[AlarmService]:
    path = write_config(tmp_path, namespace, kafka_bootstrap, database_url, http.url)
    service = AlarmService(load_alarm_config(path))
    task = asyncio.create_task(service.run(), name="alarm-service")
    await asyncio.wait_for(service.ready.wait(), 60)
    yield service
    service.stop()
    await asyncio.wait_for(task, 60)


async def test_an_incident_is_one_alarm_told_to_headquarters_and_shown_with_its_members(
    service: AlarmService, namespace: str, kafka_bootstrap: str, http: HttpReceiver
) -> None:
    assert service.store is not None
    engine, now = service.store.engine, service.store.clock()
    tokens = {
        "hq": await create_token(engine, "hq", Role.HQ, ["*"], now),
        "ops-a": await create_token(engine, "ops-a", Role.OPERATOR, ["plant-a"], now),
        "ops-d": await create_token(engine, "ops-d", Role.OPERATOR, ["plant-d"], now),
    }
    topics = Topics(namespace)
    correlator = Correlator(CorrelationConfig(version="t", default=TERMS))
    members: list[AlertEvent] = [
        alert_event("a1", plant="plant-a", machine="mill-03", at=0),
        alert_event("b1", plant="plant-b", machine="mill-01", at=180),
        alert_event("c1", plant="plant-c", machine="mill-02", at=360),
        alert_event("c2", plant="plant-c", machine="mill-03", at=400),
    ]
    producer = AIOKafkaProducer(**kafka_options(kafka_bootstrap))
    await producer.start()
    try:
        for event in members:
            await send(producer, topics.alert_events, event)
            for change in correlator.on_event(event):
                update = to_update(change, Fleet([]), TERMS)
                headers = [(CONTRACT_HEADER, INCIDENT_CONTRACT.encode())]
                for _ in range(2):  # a stage that restarted publishes some updates twice
                    await producer.send_and_wait(
                        topics.incident_events,
                        encode(update),
                        key=update.incident_id.encode(),
                        headers=headers,
                    )
    finally:
        await producer.stop()

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.api_port}") as api:

        async def listed(who: str) -> list[dict[str, object]]:
            got = await api.get(
                "/api/v1/incidents", headers={"Authorization": f"Bearer {tokens[who]}"}
            )
            assert got.status_code == 200, got.text
            found: list[dict[str, object]] = got.json()
            return found

        async def all_members() -> bool:
            found = await listed("hq")
            return bool(found) and found[0]["members"] == 4

        await async_wait_for(all_members, 30, "the incident with its four members")
        [incident] = await listed("hq")
        assert incident["plants"] == ["plant-a", "plant-b", "plant-c"]
        assert incident["state"] == "active_unacknowledged"
        assert "3 of 3 plants with mill" in str(incident["summary"])
        assert [i["id"] for i in await listed("ops-a")] == [incident["id"]]
        assert await listed("ops-d") == []

        async def hq_told() -> bool:
            return len(http.answered("/hq")) >= 2

        await async_wait_for(hq_told, 30, "headquarters told of the opening and of plant-c")
        auth = {"Authorization": f"Bearer {tokens['hq']}"}
        shown = (await api.get(f"/api/v1/incidents/{incident['id']}", headers=auth)).json()
        assert [m["machine"] for m in shown["member_list"]] == [
            "mill-03",
            "mill-01",
            "mill-02",
            "mill-03",
        ]

        async def members_linked() -> bool:
            got = (await api.get(f"/api/v1/incidents/{incident['id']}", headers=auth)).json()
            return all(m["alarm"] is not None for m in got["member_list"])

        await async_wait_for(members_linked, 30, "every member's own alarm")
        member_alarm = (await api.get("/api/v1/alarms/a1", headers=auth)).json()
        assert member_alarm["incidents"] == [incident["id"]]
        assert [e["action"] for e in shown["alarm"]["timeline"]] == ["raise", "update", "update"]
        denied = await api.get(
            f"/api/v1/incidents/{incident['id']}",
            headers={"Authorization": f"Bearer {tokens['ops-d']}"},
        )
        assert denied.status_code == 403
        base = f"http://127.0.0.1:{service.api_port}"
        # In a thread: the service answering it runs on this test's event loop.
        shown_cli = await asyncio.to_thread(
            incidents_cli, base, tokens["hq"], "show", str(incident["id"])
        )
        assert "3 of 3 plants with mill" in shown_cli
        assert "plant-c/line1/mill-03" in shown_cli
        listed_cli = await asyncio.to_thread(incidents_cli, base, tokens["hq"], "list", "--open")
        assert str(incident["id"]) in listed_cli
    assert sorted(json.loads(r.body)["kind"] for r in http.answered("/hq")) == ["raised", "updated"]

    async def members_told_locally() -> bool:
        return len(http.answered("/ops")) == 4  # each member alarm keeps its own escalation

    await async_wait_for(members_told_locally, 30, "the members' local notifications")
    assert service.intake is not None
    assert service.intake.incident_updates == 6  # three updates, each twice
