"""Where transitions go once recorded: each sink drains its own rows of the outbox. Kafka gets
every transition (AlarmTransition on alerts.events, keyed by plant/machine so one machine's
stay in order); InfluxDB a point of `alarm_state` (engineers overlay alarms on series); andon
boards their line's current alarms as a retained MQTT message."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.client.write.point import Point
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.alarm_service.config import AndonSettings
from alerting.records.schema import alarms
from plantmesh.connections import InfluxConnection, KafkaConnection
from plantmesh.contracts import (
    ALARM_TRANSITION_CONTRACT,
    CONTRACT_HEADER,
    AlarmTransition,
    encode,
)
from plantmesh.kafka.clients import Producer, make_producer, start_client

log = logging.getLogger(__name__)
MEASUREMENT = "alarm_state"


class Publisher(Protocol):
    sink: str

    async def start(self) -> None: ...

    async def publish(self, transitions: Sequence[AlarmTransition]) -> None:
        """All of them, or raise: the outbox keeps what was not acknowledged."""
        ...

    async def close(self) -> None: ...


class KafkaPublisher:
    sink = "kafka"

    def __init__(self, kafka: KafkaConnection, topic: str) -> None:
        self.kafka = kafka
        self.topic = topic
        self._producer: Producer | None = None

    async def start(self) -> None:
        producer = make_producer(self.kafka, "alarms")
        await start_client(producer)
        self._producer = producer

    async def publish(self, transitions: Sequence[AlarmTransition]) -> None:
        assert self._producer is not None
        header = [(CONTRACT_HEADER, ALARM_TRANSITION_CONTRACT.encode())]
        pending = [
            await self._producer.send(
                self.topic,
                encode(t),
                key=f"{t.asset.plant}/{t.asset.machine}".encode(),
                headers=header,
            )
            for t in transitions
        ]
        await asyncio.gather(*pending)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()


def point(t: AlarmTransition) -> Point:
    made: Point = (
        Point(MEASUREMENT)  # type: ignore[no-untyped-call]
        .tag("plant", t.asset.plant)
        .tag("area", t.asset.area)
        .tag("line", t.asset.line)
        .tag("machine", t.asset.machine)
        .tag("signal", t.signal)
        .tag("issue_type", t.issue_type)
        .tag("priority", t.priority.value)
        .field("alarm_id", t.alarm_id)
        .field("state", t.to_state.value)
        .field("action", t.action)
        .field("actor", t.actor)
        .field("hidden", t.hidden)
        .field("seq", t.seq)
        .time(t.at)
    )
    return made


class InfluxPublisher:
    sink = "influx"

    def __init__(self, influx: InfluxConnection) -> None:
        self.influx = influx
        self._client: InfluxDBClientAsync | None = None

    async def start(self) -> None:
        self._client = InfluxDBClientAsync(
            url=self.influx.url,
            token=self.influx.token_value(),
            org=self.influx.org,
            timeout=int(self.influx.timeout_s * 1000),
        )

    async def publish(self, transitions: Sequence[AlarmTransition]) -> None:
        assert self._client is not None
        points = [point(t) for t in transitions]
        ok = await self._client.write_api().write(bucket=self.influx.bucket, record=points)
        if ok is False:
            raise RuntimeError("InfluxDB did not accept the points")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]


class AndonPublisher:
    """Per line touched by the transitions, the line's open alarms now (not the transitions
    themselves: a board shows a state, and a retained message gives it to a board that
    connects later)."""

    sink = "andon"

    def __init__(self, settings: AndonSettings, engine: AsyncEngine) -> None:
        self.settings = settings
        self.engine = engine
        self._client: mqtt.Client | None = None

    async def start(self) -> None:
        conn = self.settings.mqtt
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=conn.client_id or "")
        if conn.username is not None:
            client.username_pw_set(conn.username, conn.password_value())
        if conn.tls:
            client.tls_set(ca_certs=conn.ca_file)
        await asyncio.to_thread(client.connect, conn.host, conn.port, conn.keepalive_s)
        client.loop_start()
        self._client = client

    def topic(self, plant: str, area: str, line: str) -> str:
        return f"{self.settings.topic_prefix}/{plant}/{area}/{line}"

    async def publish(self, transitions: Sequence[AlarmTransition]) -> None:
        assert self._client is not None
        lines = sorted({(t.asset.plant, t.asset.area, t.asset.line) for t in transitions})
        for plant, area, line in lines:
            body = json.dumps(await self.line_state(plant, area, line)).encode()
            info = self._client.publish(self.topic(plant, area, line), body, qos=1, retain=True)
            await asyncio.to_thread(info.wait_for_publish, 10.0)
            if not info.is_published():
                raise RuntimeError(f"andon {plant}/{area}/{line}: not published (broker down?)")

    async def line_state(self, plant: str, area: str, line: str) -> dict[str, Any]:
        query = (
            select(alarms)
            .where(
                alarms.c.plant == plant,
                alarms.c.area == area,
                alarms.c.line == line,
                alarms.c.open_key.is_not(None),
            )
            .order_by(alarms.c.opened_at)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        shown = [r for r in rows if not (r.shelving or r.suppressed_by or r.out_of_service)]
        order = ["low", "medium", "high", "critical"]
        worst = max((r.priority for r in shown), key=order.index, default=None)
        return {
            "plant": plant,
            "area": area,
            "line": line,
            "active": sum(1 for r in shown if r.active),
            "unacknowledged": sum(1 for r in shown if not r.acknowledged),
            "worst_priority": worst,
            "hidden": len(rows) - len(shown),
            "alarms": [
                {
                    "id": r.id,
                    "machine": r.machine,
                    "signal": r.signal,
                    "issue_type": r.issue_type,
                    "priority": r.priority,
                    "state": r.state,
                }
                for r in shown
            ],
        }

    async def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
