"""The alarm service against the real local Kafka, InfluxDB, Mosquitto and both databases, with
an HTTP and an SMTP receiver in the test process: a RAISED on alerts.events becomes an alarm,
a notification, transitions on alerts.events, points in InfluxDB and a retained andon message;
an acknowledgement through the API stops the escalation; after a clear everyone told gets the
all-clear, once."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from aiokafka import AIOKafkaProducer
from paho.mqtt.enums import CallbackAPIVersion

from alerting.alarm_service.config import load_alarm_config
from alerting.alarm_service.service import AlarmService
from alerting.api.roles import Role
from alerting.api.tokens import create_token
from plantmesh.contracts import AlarmTransition
from plantmesh.mqtt_auth import apply_connection, connect_args
from plantmesh.topics import Topics
from tests.support.alarm_service import send, transitions_on, write_config
from tests.support.alarms import alert_event
from tests.support.receivers import HttpReceiver, SmtpReceiver
from tests.support.servers import influx_query
from tests.support.waiting import SCALE, async_wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def andon_message(mqtt_url: str, topic: str) -> dict[str, Any] | None:
    """The retained message on `topic`, as a new board would get it."""
    got: list[bytes] = []
    arrived = threading.Event()

    def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        got.append(bytes(message.payload))
        arrived.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    conn, host, port = connect_args(mqtt_url)
    apply_connection(client, conn)
    client.connect(host, port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    try:
        arrived.wait(10 * SCALE)
    finally:
        client.disconnect()
        client.loop_stop()
    return json.loads(got[-1]) if got else None


@pytest.fixture
async def service(
    tmp_path: Path,
    namespace: str,
    kafka_bootstrap: str,
    database_url: str,
    influx_url: str,
    influx_database: str,
    mqtt_url: str,
    http: HttpReceiver,
    smtp: SmtpReceiver,
) -> AsyncIterator[AlarmService]:
    path = write_config(
        tmp_path,
        namespace=namespace,
        kafka=kafka_bootstrap,
        database=database_url,
        http=http,
        smtp=smtp,
        extra={
            "influxdb": {"url": influx_url, "bucket": f"{influx_database}/autogen"},
            "andon": {"mqtt": {"url": mqtt_url}, "topic_prefix": f"{namespace}/andon"},
        },
    )
    service = AlarmService(load_alarm_config(path))
    task = asyncio.create_task(service.run(), name="alarm-service")
    await asyncio.wait_for(service.ready.wait(), 60)
    yield service
    service.stop()
    await asyncio.wait_for(task, 60)


async def test_a_raise_is_recorded_notified_published_and_acknowledged_through_the_api(
    service: AlarmService,
    producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    influx_url: str,
    influx_database: str,
    mqtt_url: str,
    namespace: str,
    http: HttpReceiver,
) -> None:
    topic = Topics(namespace).alert_events
    await send(producer, topic, alert_event("a1"))
    await send(producer, topic, alert_event("a1"))  # delivered twice: recorded once
    await async_wait_for(lambda: _async(http.answered("/ops")), 30, "the operator's webhook")

    assert service.store is not None
    token = await create_token(
        service.store.engine, "ops", Role.OPERATOR, ["plant-a"], service.clock()
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.api_port}") as api:
        answer = await api.post(
            "/api/v1/alarms/a1/acknowledge",
            headers={"Authorization": f"Bearer {token}"},
            json={"comment": "checking the mill"},
        )
    assert answer.status_code == 200, answer.text
    await send(producer, topic, alert_event("a1", "cleared", at=30))

    async def all_published() -> list[AlarmTransition]:
        found = await transitions_on(kafka_bootstrap, topic)
        return found if [t.action for t in found] == ["raise", "acknowledge", "clear"] else []

    published = await async_wait_for(all_published, 30, "raise, acknowledge, clear on Kafka")
    assert [t.to_state for t in published][-1] == "normal"
    assert published[1].actor == "user:ops"

    def points() -> list[Any]:
        answer = influx_query(influx_url, "SELECT state, action FROM alarm_state", influx_database)
        series = answer["results"][0].get("series") or [{"values": []}]
        return series[0]["values"]

    rows = await async_wait_for(
        lambda: _async(points() if len(points()) == 3 else None), 30, "3 points"
    )
    assert [r[2] for r in rows] == ["raise", "acknowledge", "clear"]

    async def board_clear() -> dict[str, Any] | None:
        topic = f"{namespace}/andon/plant-a/milling/line1"
        board = await asyncio.to_thread(andon_message, mqtt_url, topic)
        return board if board is not None and board["active"] == 0 else None

    board = await async_wait_for(board_clear, 30, "the andon board to show the line clear")
    assert (board["unacknowledged"], board["alarms"]) == (0, [])

    resolved = await async_wait_for(
        lambda: _async(
            [r for r in http.answered("/ops") if json.loads(r.body)["kind"] == "resolved"]
        ),
        30,
        "the all-clear",
    )
    assert len(resolved) == 1
    assert len(http.answered("/ops")) == 2  # raised and resolved, nothing twice
    assert http.answered("/maint") == []  # acknowledged before level 2's time


async def _async(value: Any) -> Any:
    return value
