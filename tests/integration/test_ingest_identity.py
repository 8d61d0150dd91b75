"""Identity end to end on the secured stack: two gateways with credentials of their own
(`plantmesh gateway add`'s code) publish over TLS; the broker's ACL keeps each in its own plant,
the bridge (as the read-only `bridge` user, with the gateway registry) sends along who may
publish on each topic, and the writer refuses a batch that claims another gateway or plant
(`identity_mismatch`), while each gateway's own data is stored."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.bridge import Bridge
from ingest.config import IngestConfig
from ingest.writer import Writer
from plantmesh.config import validate_config
from plantmesh.contracts import AssetPath
from plantmesh.gateways import add_gateway, remove_gateway
from plantmesh.stack.credentials import BRIDGE_USER, Gateway
from plantmesh.stack.mosquitto import Mosquitto
from plantmesh.stack.paths import StackConfig
from plantmesh.topics import (
    HEADER_DLQ_REASON,
    HEADER_MQTT_PUBLISHERS,
    HEADER_MQTT_TOPIC,
    Topics,
)
from tests.support.ingest import bridge_running, forget_session, influxql, points, writer_running
from tests.support.kafka import consume
from tests.support.mqtt_client import Client
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0).isoformat()
A = AssetPath(plant="plant-a", area="press", line="l1", machine="press-1")
B = AssetPath(plant="plant-b", area="press", line="l1", machine="press-1")
STATE = "birth"


@pytest.fixture
def stack() -> Mosquitto:
    broker = Mosquitto(StackConfig.from_env())
    if not broker.serves_tls():
        pytest.skip("the stack runs --insecure: no identities to enforce")
    return broker


@pytest.fixture
def gateways(stack: Mosquitto, namespace: str) -> Iterator[tuple[str, str]]:
    """gw-a of plant-a and gw-b of plant-b, issued on the running stack, revoked afterwards."""
    names = (f"{namespace}-gw-a", f"{namespace}-gw-b")
    for name, plant in zip(names, ("plant-a", "plant-b"), strict=True):
        add_gateway(Gateway(name, plant, namespace), config=stack.config)
    stack.reload()
    yield names
    for name in names:
        remove_gateway(name, config=stack.config)
    stack.reload()


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.close()


def connected(stack: Mosquitto, made: list[Client], user: str) -> Client:
    client = Client(stack.tls_port, stack.ca_file, user, stack.credentials.password(user))
    made.append(client)
    # The broker rereads its password file on SIGHUP: wait until it knows the new user.
    assert client.connect(), f"{user} could not connect"
    return client


@pytest.fixture
async def config(
    stack: Mosquitto, namespace: str, kafka_bootstrap: str, influx_url: str
) -> AsyncIterator[IngestConfig]:
    client_id = f"{namespace}-bridge"
    yield validate_config(
        IngestConfig,
        {
            "namespace": namespace,
            "mqtt": {**stack.connection(BRIDGE_USER), "client_id": client_id},
            "kafka": {"bootstrap": kafka_bootstrap, "client_id": namespace},
            "influxdb": {"url": influx_url, "bucket": f"{namespace}/autogen"},
            "bridge": {
                "shared_group": client_id,
                "session_expiry_s": 600,
                "gateways": str(stack.credentials.registry_path),
            },
            "writer": {"group_id": f"{namespace}-writer"},
            "backoff": {"initial_s": 0.05, "max_s": 0.2},
        },
    )
    forget_session(stack.address, client_id)
    await influxql(influx_url, f'DROP DATABASE "{namespace}"')


def batch(gateway: str, seq: int, asset: AssetPath, value: float) -> bytes:
    reading = {
        "asset": asset.model_dump(),
        "signal": "temp",
        "value": value,
        "unit": "degC",
        "source_ts": NOW,
        "gateway_ts": NOW,
    }
    body = {"gateway_id": gateway, "session_id": "s1", "seq": seq, "sent_at": NOW}
    return json.dumps({**body, "readings": [reading]}).encode()


def status(gateway: str, plant: str) -> bytes:
    return json.dumps(
        {"gateway_id": gateway, "plant": plant, "state": STATE, "session_id": "s1", "at": NOW}
    ).encode()


async def test_a_gateway_cannot_write_another_gateways_or_plants_data(
    stack: Mosquitto,
    gateways: tuple[str, str],
    clients: list[Client],
    config: IngestConfig,
    influx_url: str,
) -> None:
    gw_a, gw_b = gateways
    topics = Topics(config.namespace)
    a_topic, b_topic = topics.mqtt_readings(A), topics.mqtt_readings(B)
    a = connected(stack, clients, gw_a)
    b = connected(stack, clients, gw_b)

    async with writer_running(Writer(config)) as writer, bridge_running(Bridge(config)) as bridge:
        # Their own data, on their own topics: stored.
        assert a.publish(a_topic, batch(gw_a, 1, A, 1.0))
        assert b.publish(b_topic, batch(gw_b, 1, B, 2.0))
        # The broker's ACL: gw-a may not publish into plant-b's topics (PUBACK 0x87, MQTT v5).
        assert not a.publish(b_topic, batch(gw_a, 2, B, 666.0))
        # On its own topic, gw-a claims to be gw-b, or sends plant-b's readings: refused.
        assert a.publish(a_topic, batch(gw_b, 3, B, 666.0))
        assert a.publish(a_topic, batch(gw_b, 4, A, 666.0))
        assert a.publish(a_topic, batch(gw_a, 5, B, 666.0))
        # Its status naming gw-b, on its own status topic: refused at the bridge.
        assert a.publish(topics.mqtt_gateway_status("plant-a", gw_a), status(gw_b, "plant-b"))
        assert a.publish(topics.mqtt_gateway_status("plant-a", gw_a), status(gw_a, "plant-a"))

        async def all_handled() -> bool:
            readings = 5  # two of their own, three refused by the writer
            committed = sum(writer.stats.committed.values())
            return bridge.stats.forwarded + bridge.stats.dlq == readings + 2 and (
                committed >= readings
            )

        await async_wait_for(all_handled, 30, "every message through the bridge and the writer")
        assert bridge.stats.dlq_by_reason == {"identity_mismatch": 1}

    dlq = await consume(config.kafka.bootstrap, topics.telemetry_dlq, 4)
    assert Counter(dict(r.headers)[HEADER_DLQ_REASON] for r in dlq) == {b"identity_mismatch": 4}
    for record in dlq:
        headers: dict[str, Any] = dict(record.headers)
        assert headers[HEADER_MQTT_TOPIC].decode().startswith(f"{config.namespace}/")
        if headers[HEADER_MQTT_TOPIC] == a_topic.encode():
            assert headers[HEADER_MQTT_PUBLISHERS] == gw_a.encode()

    rows = await points(influx_url, config.influxdb.database)
    assert sorted((row["plant"], row["value"]) for row in rows) == [
        ("plant-a", 1.0),
        ("plant-b", 2.0),
    ]
