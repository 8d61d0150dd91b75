"""The stack's TLS MQTT listener for real: a Mosquitto of this module's own, started by the
stack's code (own state dir, free ports), with gateways issued by `plantmesh gateway`'s code."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.agent import Agent
from edge_agent.buffer import NewBatch
from edge_agent.config import AgentConfig
from plantmesh.gateways import add_gateway, remove_gateway
from plantmesh.stack import manager
from plantmesh.stack.credentials import BRIDGE_USER, Gateway
from plantmesh.stack.mosquitto import Mosquitto
from plantmesh.stack.mqtt_probe import mqtt_handshake
from plantmesh.stack.paths import HOST, Ports, StackConfig
from plantmesh.stack.tls import ensure_certificates
from tests.support.agent import offline_modbus
from tests.support.mqtt_client import Client
from tests.support.ports import free_ports
from tests.support.waiting import SCALE, async_wait_for, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="needs mosquitto"),
]

TIMEOUT = 10 * SCALE
SHARED = "$share/plantmesh-bridge/"  # the bridge subscribes to shared subscriptions


@dataclass
class Secured:
    config: StackConfig
    broker: Mosquitto

    @property
    def port(self) -> int:
        return self.config.ports.mqtt_tls

    def password(self, user: str) -> str:
        return self.broker.credentials.password(user)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    cfg = StackConfig(
        cache=StackConfig.from_env().cache,
        state=tmp_path_factory.mktemp("mqtt-security") / "state",
        ports=Ports(mqtt=free_ports(1)),  # the TLS listener takes the next port
    )
    add_gateway(Gateway("gw-a", "plant-a"), config=cfg)
    add_gateway(Gateway("gw-b", "plant-b"), password="b's own secret", config=cfg)
    try:
        manager.up(cfg, only=["mosquitto"], report=lambda _: None)
        yield Secured(cfg, Mosquitto(cfg))
    finally:
        manager.down(cfg, only=["mosquitto"], report=lambda _: None)


@pytest.fixture
def clients(secured: Secured) -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.close()


def _client(
    secured: Secured, made: list[Client], user: str | None, password: str | None = None
) -> Client:
    client = Client(secured.port, secured.broker.ca_file, user, password)
    made.append(client)
    return client


def _connected(secured: Secured, made: list[Client], user: str) -> Client:
    client = _client(secured, made, user, secured.password(user))
    assert client.connect(), f"{user} could not connect"
    return client


def _bridge(secured: Secured, made: list[Client]) -> Client:
    bridge = _connected(secured, made, BRIDGE_USER)
    bridge.subscribe(SHARED + "plantmesh/v1/+/+/+/+/readings")
    bridge.subscribe(SHARED + "plantmesh/v1/+/_gateway/+/status")
    return bridge


def test_the_secured_broker_has_no_plain_listener(secured: Secured) -> None:
    [status] = manager.status(secured.config, only=["mosquitto"])
    assert status.healthy  # a TLS CONNECT as the operator
    assert not mqtt_handshake(secured.config.ports.mqtt)  # nothing plain, nothing anonymous
    with socket.socket() as sock:
        assert sock.connect_ex((HOST, secured.config.ports.mqtt)) != 0
    env = manager.env(secured.config, only=["mosquitto"])
    assert env["PLANTMESH_MQTT_URL"] == f"mqtts://{HOST}:{secured.port}"


def test_anonymous_and_wrong_passwords_are_refused(secured: Secured, clients: list[Client]) -> None:
    assert not _client(secured, clients, None).connect()
    assert not _client(secured, clients, "gw-a", "not-the-password").connect()
    assert not _client(secured, clients, "nobody", "x").connect()
    assert _client(secured, clients, "gw-b", "b's own secret").connect()
    ca = secured.broker.ca_file
    assert not mqtt_handshake(secured.port, ca_file=ca)
    assert mqtt_handshake(
        secured.port, ca_file=ca, username=BRIDGE_USER, password=secured.password(BRIDGE_USER)
    )


def test_a_client_without_the_ca_cannot_connect(secured: Secured, tmp_path: Path) -> None:
    with (
        socket.create_connection((HOST, secured.port), timeout=TIMEOUT) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname=HOST)
    other = ensure_certificates(tmp_path / "other-ca")  # a CA that did not sign the server
    bridge_password = secured.password(BRIDGE_USER)
    assert not mqtt_handshake(
        secured.port, ca_file=other.ca_cert, username=BRIDGE_USER, password=bridge_password
    )


def test_a_gateway_publishes_only_its_own_plant_and_status(
    secured: Secured, clients: list[Client]
) -> None:
    bridge = _bridge(secured, clients)
    gateway = _connected(secured, clients, "gw-a")
    own = "plantmesh/v1/plant-a/area/line/m1/readings"
    foreign = "plantmesh/v1/plant-b/area/line/m1/readings"
    other_status = "plantmesh/v1/plant-a/_gateway/gw-b/status"
    own_status = "plantmesh/v1/plant-a/_gateway/gw-a/status"
    assert not gateway.publish(foreign, b"denied")
    assert not gateway.publish(other_status, b"denied")
    assert gateway.publish(own, b"allowed")
    assert gateway.publish(own_status, b"online")
    # One client's messages arrive in order: once the later ones are in, the denied ones would
    # have been too.
    wait_for(lambda: bridge.received(own_status), TIMEOUT, "the gateway's own status")
    assert bridge.received(own) == [b"allowed"]
    assert bridge.received(foreign) == []
    assert bridge.received(other_status) == []


def test_the_bridge_may_only_read(secured: Secured, clients: list[Client]) -> None:
    bridge = _bridge(secured, clients)
    topic = "plantmesh/v1/plant-a/area/line/m2/readings"
    assert not bridge.publish(topic, b"from the bridge")
    gateway = _connected(secured, clients, "gw-a")
    assert gateway.publish(topic, b"from the gateway")
    wait_for(lambda: bridge.received(topic), TIMEOUT, "the gateway's reading")
    assert bridge.received(topic) == [b"from the gateway"]


def test_gateway_add_and_remove_reach_the_running_broker(
    secured: Secured, clients: list[Client]
) -> None:
    add_gateway(Gateway("gw-c", "plant-c"), config=secured.config)
    assert secured.broker.reload() is not None
    password = secured.password("gw-c")

    def connects() -> bool:
        return mqtt_handshake(
            secured.port, ca_file=secured.broker.ca_file, username="gw-c", password=password
        )

    wait_for(connects, TIMEOUT, "the new gateway accepted after SIGHUP")
    bridge = _bridge(secured, clients)
    gateway = _connected(secured, clients, "gw-c")
    topic = "plantmesh/v1/plant-c/area/line/m/readings"
    assert gateway.publish(topic, b"new")
    wait_for(lambda: bridge.received(topic), TIMEOUT, "the new gateway's reading")
    remove_gateway("gw-c", config=secured.config)
    assert secured.broker.reload() is not None
    wait_for(lambda: not connects(), TIMEOUT, "the removed gateway refused after SIGHUP")


async def test_an_agent_publishes_with_a_password_file(
    secured: Secured, clients: list[Client]
) -> None:
    bridge = _bridge(secured, clients)
    readings = "plantmesh/v1/plant-a/a/l/m/readings"
    config = AgentConfig.model_validate(
        {
            "gateway_id": "gw-a",
            "plant": "plant-a",
            "mqtt": {
                "url": f"mqtts://{HOST}:{secured.port}",
                "username": "gw-a",
                "password_file": str(secured.broker.credentials.password_file("gw-a")),
                "ca_file": str(secured.broker.ca_file),
                "reconnect_max_s": 0.5,
            },
            "buffer": {"kind": "memory"},
            "shutdown_timeout_s": 2,
            "sources": [offline_modbus("nowhere")],
        }
    )
    agent = Agent(config)
    agent.buffer.put([NewBatch("old-session", 0, readings, b"{}", 1)])
    task = asyncio.create_task(agent.run(), name="secured-agent")
    try:

        async def delivered() -> bool:
            return bool(bridge.received(readings))

        await async_wait_for(delivered, 20, "the agent's batch at the bridge")
        assert agent.publisher.connected
        assert bridge.received("plantmesh/v1/plant-a/_gateway/gw-a/status")  # its birth
    finally:
        agent.stop()
        await asyncio.wait_for(task, 30)
