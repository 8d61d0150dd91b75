"""The bridge drives paho from the asyncio loop, so reconnecting is its own job: a broker that
goes away and comes back finds the bridge subscribed again and forwarding. Runs against a
private Mosquitto (the shared one must stay up), started and stopped through the stack API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.bridge import Bridge
from plantmesh.connections import MqttConnection
from plantmesh.stack import manager
from plantmesh.stack.mosquitto import Mosquitto
from plantmesh.stack.paths import StackConfig
from tests.support.ingest import ASSET, batch_payload, bridge_config, bridge_running, publish
from tests.support.kafka import consume
from tests.support.stack import private_server
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def private_mqtt(tmp_path: Path) -> Iterator[tuple[StackConfig, str]]:
    with private_server(tmp_path, "mosquitto", "PLANTMESH_MQTT_URL") as server:
        yield server


async def test_a_broker_restart_finds_the_bridge_connected_again(
    namespace: str, kafka_bootstrap: str, private_mqtt: tuple[StackConfig, str]
) -> None:
    stack, _ = private_mqtt
    section = Mosquitto(stack).connection()  # its own operator and CA, over TLS
    mqtt_url = MqttConnection.model_validate(section)
    config = bridge_config(namespace, section, kafka_bootstrap, f"{namespace}-bridge")
    topic = config.topics.mqtt_readings(ASSET)
    async with bridge_running(Bridge(config)) as bridge:
        await publish(mqtt_url, [(topic, batch_payload(0))])

        async def forwarded(count: int) -> bool:
            return bridge.stats.forwarded >= count

        await async_wait_for(lambda: forwarded(1), 20, "the first message forwarded")
        manager.down(stack, only=["mosquitto"], report=lambda _: None)

        async def disconnected() -> bool:
            return bridge.stats.subscribed == 1 and not bridge.connected

        await async_wait_for(disconnected, 20, "the bridge to notice the broker is gone")
        manager.up(stack, only=["mosquitto"], report=lambda _: None)

        async def subscribed_again() -> bool:
            return bridge.stats.subscribed >= 2

        await async_wait_for(subscribed_again, 30, "the bridge to connect and subscribe again")
        assert bridge.stats.connects >= 2
        await publish(mqtt_url, [(topic, batch_payload(1))])
        # Delivery is at least once: a broker stopped between the Kafka ack and its PUBACK keeps
        # the first message in its persistent session and hands it over again, which is allowed
        # (the writer's points are idempotent). Losing either message is not.
        expected = {batch_payload(0), batch_payload(1)}
        raw = await consume(
            kafka_bootstrap,
            config.topics.telemetry_raw,
            2,
            until=lambda got: {r.value for r in got} >= expected,
        )
    assert {r.value for r in raw} == expected
