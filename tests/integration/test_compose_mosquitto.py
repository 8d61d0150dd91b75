"""deploy/compose's broker without a container engine: the machine's own Mosquitto run through
the compose service's start.sh and mosquitto.conf (paths and ports moved into a temporary
directory), on the secrets make-secrets.sh writes. So the password hashing, the ACL, the TLS
certificate for the gateways and the healthcheck command are exercised for real."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.compose import COMPOSE_DIR, EXAMPLE_ENV, load_compose, read_env_file
from tests.support.mqtt_client import Client
from tests.support.ports import free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


@dataclass
class Broker:
    secrets: Path  # what make-secrets.sh wrote
    inside: int  # the compose network's plain listener (1883 in compose)
    tls: int  # the gateways' listener (8883 in compose)
    data: Path

    def password(self, name: str) -> str:
        return (self.secrets / name).read_text().strip()

    def client(self, made: list[Client], user: str | None, password: str | None) -> Client:
        client = Client(self.tls, self.secrets / "mqtt-ca.pem", user, password)
        made.append(client)
        return client


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    needed = [MOSQUITTO, "mosquitto_passwd", "mosquitto_sub", "openssl"]
    missing = [p for p in needed if shutil.which(p) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: mosquitto, mosquitto-clients)")
    secrets = tmp_path / "secrets"
    subprocess.run(
        [str(COMPOSE_DIR / "make-secrets.sh"), "--mqtt-host", "127.0.0.1", "gw-a:plant-a"],
        check=True,
        capture_output=True,
        env={**os.environ, "PLANTMESH_SECRETS_DIR": str(secrets)},
    )
    compose = load_compose(read_env_file(EXAMPLE_ENV))
    # What compose mounts at /run/secrets/<name> for the mosquitto service.
    run_secrets = tmp_path / "run-secrets"
    run_secrets.mkdir()
    for name in compose["services"]["mosquitto"]["secrets"]:
        shutil.copy(secrets / Path(compose["secrets"][name]["file"]).name, run_secrets / name)
    inside, tls, data = free_port(), free_port(), tmp_path / "data"
    moved = {"/mosquitto/data": str(data), "/run/secrets": str(run_secrets)}
    moved["/mosquitto/config"] = str(tmp_path / "config")
    config = (COMPOSE_DIR / "mosquitto" / "mosquitto.conf").read_text()
    config = config.replace("listener 1883", f"listener {inside} 127.0.0.1")
    config = config.replace("listener 8883", f"listener {tls} 127.0.0.1")
    start = (COMPOSE_DIR / "mosquitto" / "start.sh").read_text()
    # The image's broker switches to its `mosquitto` user; here it stays the test's user.
    start = start.replace("chown -R mosquitto:mosquitto", ": chown").replace(
        "/usr/sbin/mosquitto", MOSQUITTO
    )
    for old, new in moved.items():
        config, start = config.replace(old, new), start.replace(old, new)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "mosquitto.conf").write_text(config + f"user {getpass.getuser()}\n")
    (tmp_path / "start.sh").write_text(start)
    log = (tmp_path / "mosquitto.log").open("w")
    process = subprocess.Popen(["sh", str(tmp_path / "start.sh")], stdout=log, stderr=log)
    try:
        wait_for(
            lambda: process.poll() is not None or (_listening(inside) and _listening(tls)),
            15,
            "the compose broker's listeners",
        )
        assert process.poll() is None, (tmp_path / "mosquitto.log").read_text()
        yield Broker(secrets, inside, tls, data)
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.close()


def test_the_compose_healthcheck_passes(broker: Broker) -> None:
    compose = load_compose(read_env_file(EXAMPLE_ENV))
    kind, command = compose["services"]["mosquitto"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    command = command.replace("/mosquitto/data", str(broker.data))
    command = command.replace("-p 1883", f"-p {broker.inside}")
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("seconds")  # $SYS/broker/uptime


def test_only_known_users_connect_over_tls(broker: Broker, clients: list[Client]) -> None:
    assert not broker.client(clients, None, None).connect()
    assert not broker.client(clients, "gw-a", "wrong").connect()
    gateway_password = broker.password("gateways/gw-a.password")
    assert broker.client(clients, "gw-a", gateway_password).connect()
    # The hashed file holds no clear password.
    hashed = (broker.data / "security" / "passwd").read_text()
    assert gateway_password not in hashed
    assert "gw-a:$7$" in hashed


def test_the_acl_confines_gateways_bridge_and_andon(broker: Broker, clients: list[Client]) -> None:
    bridge = broker.client(clients, "bridge", broker.password("mqtt_bridge_password"))
    gateway = broker.client(clients, "gw-a", broker.password("gateways/gw-a.password"))
    alarms = broker.client(clients, "alarms", broker.password("mqtt_alarms_password"))
    assert bridge.connect()
    assert gateway.connect()
    assert alarms.connect()
    bridge.subscribe("$share/plantmesh-bridge/plantmesh/v1/+/+/+/+/readings")
    own = "plantmesh/v1/plant-a/press/line1/p1/readings"
    assert not gateway.publish("plantmesh/v1/plant-b/press/line1/p1/readings", b"foreign")
    assert not gateway.publish("plantmesh/v1/plant-a/_gateway/gw-b/status", b"not mine")
    assert gateway.publish("plantmesh/v1/plant-a/_gateway/gw-a/status", b"mine")
    assert gateway.publish(own, b"reading")
    wait_for(lambda: bridge.received(own), 10, "the gateway's reading at the bridge")
    assert not bridge.publish(own, b"the bridge only reads")
    assert alarms.publish("plantmesh/v1/andon/plant-a/press/line1", b"{}")
    assert not alarms.publish(own, b"the alarm service writes andon only")
