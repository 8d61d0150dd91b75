"""`plantmesh stack` itself: a second stack on free ports with its own state directory, sharing
the cache (so nothing is downloaded or built again), brought up and down for real."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from plantmesh.connections import MqttConnection
from plantmesh.mqtt_auth import apply_connection
from plantmesh.stack import manager
from plantmesh.stack.errors import StackError
from plantmesh.stack.mosquitto import Mosquitto
from plantmesh.stack.paths import INFLUXDB_VERSION, KAFKA_VERSION, Ports, StackConfig
from plantmesh.stack.postgres import Postgres
from plantmesh.stack.process import port_free
from tests.support.ports import free_ports
from tests.support.stack import remove_server_files
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def config(tmp_path: Path) -> Iterator[StackConfig]:
    cfg = StackConfig(
        cache=StackConfig.from_env().cache,  # the shared cache: nothing is rebuilt
        state=tmp_path / "state",
        ports=Ports(
            mqtt=free_ports(0), kafka=free_ports(1), influx=free_ports(2), postgres=free_ports(0)
        ),
    )
    yield cfg
    manager.down(cfg, report=lambda _: None)  # whatever a failed test left running
    remove_server_files(cfg)


def _cli_env(cfg: StackConfig) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANTMESH_")}
    return {
        **env,
        "PLANTMESH_CACHE": str(cfg.cache),
        "PLANTMESH_STATE": str(cfg.state),
        "PLANTMESH_STACK_MQTT_PORT": str(cfg.ports.mqtt),
        "PLANTMESH_STACK_KAFKA_PORT": str(cfg.ports.kafka),
        "PLANTMESH_STACK_INFLUX_PORT": str(cfg.ports.influx),
        "PLANTMESH_STACK_POSTGRES_PORT": str(cfg.ports.postgres),
    }


def _cli(cfg: StackConfig, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plantmesh.cli", "stack", *args],
        env=_cli_env(cfg),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _our_processes(state: Path) -> list[int]:
    """Live processes whose command line names a file in this stack's state directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if str(state) in cmdline:
                found.append(int(entry.name))
    return found


@pytest.mark.timeout(900)  # a cold cache provisions first (minutes); a warm one takes seconds
def test_up_status_env_down(config: StackConfig) -> None:
    up = _cli(config, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert up.stdout.count("healthy after") == 4, up.stdout
    password = Postgres(config).password()
    assert password not in up.stdout + up.stderr, "the database password reached the output"

    # The servers outlived the CLI process that started them, each in a session of its own.
    statuses = manager.status(config)
    assert [(s.name, s.port, s.state) for s in statuses] == [
        ("mosquitto", config.ports.mqtt_tls, "healthy"),
        ("kafka", config.ports.kafka, "healthy"),
        ("influxdb", config.ports.influx, "healthy"),
        ("postgres", config.ports.postgres, "healthy"),
    ]
    versions = {s.name: s.version for s in statuses}
    assert versions["kafka"] == KAFKA_VERSION
    assert versions["influxdb"] == INFLUXDB_VERSION
    assert (versions["mosquitto"] or "").startswith("2.")
    assert int((versions["postgres"] or "0").split(".")[0]) >= 13
    for s in statuses:
        assert s.pid is not None
        assert os.getsid(s.pid) == s.pid

    again = manager.bring_up(config, report=lambda _: None)
    assert again.started == []
    assert again.already_running == ["mosquitto", "kafka", "influxdb", "postgres"]

    status = _cli(config, "status")
    assert status.returncode == 0
    assert status.stdout.count("healthy") == 4, status.stdout
    assert password not in status.stdout
    env = _cli(config, "env")
    assert env.returncode == 0
    mqtt_security = config.state / "mosquitto/security"
    assert env.stdout.splitlines() == [
        f"export PLANTMESH_MQTT_URL=mqtts://127.0.0.1:{config.ports.mqtt_tls}",
        f"export PLANTMESH_KAFKA_BOOTSTRAP=127.0.0.1:{config.ports.kafka}",
        f"export PLANTMESH_INFLUX_URL=http://127.0.0.1:{config.ports.influx}",
        "export PLANTMESH_DATABASE_URL="
        f"postgresql://plantmesh:{password}@127.0.0.1:{config.ports.postgres}/plantmesh",
        f"export PLANTMESH_MQTTS_URL=mqtts://127.0.0.1:{config.ports.mqtt_tls}",
        f"export PLANTMESH_MQTT_CA_FILE={mqtt_security}/tls/ca.pem",
        "export PLANTMESH_MQTT_USERNAME=admin",
        f"export PLANTMESH_MQTT_PASSWORD_FILE={mqtt_security}/credentials/admin.password",
        f"export PLANTMESH_MQTT_GATEWAYS_FILE={mqtt_security}/gateways.json",
        "export PLANTMESH_KAFKA_USERNAME=admin",
        "export PLANTMESH_KAFKA_PASSWORD_FILE="
        f"{config.state}/kafka/security/credentials/admin.password",
        "export PLANTMESH_INFLUX_TOKEN_FILE="
        f"{config.state}/influxdb/security/credentials/admin.token",
    ]
    assert _our_processes(config.state)

    down = _cli(config, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert down.stdout.count("stopped (pid") == 4, down.stdout
    assert _our_processes(config.state) == []
    ports = [config.ports.mqtt, config.ports.kafka, config.ports.kafka + 1, config.ports.influx]
    ports.append(config.ports.postgres)
    assert [p for p in ports if not port_free(p)] == []
    assert _cli(config, "status", "--quiet").returncode == 1


def _connect(
    config: StackConfig, client_id: str, clean: bool, received: list[bytes] | None = None
) -> tuple[mqtt.Client, list[bool]]:
    """A connected client (the stack's operator, over TLS) and the session-present flag of
    its CONNACK."""
    conn = MqttConnection.model_validate(Mosquitto(config).connection())
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
    apply_connection(client, conn)
    sessions: list[bool] = []
    client.on_connect = lambda _c, _u, flags, *_: sessions.append(flags.session_present)
    if received is not None:  # before connecting: queued messages follow the CONNACK at once
        client.on_message = lambda _c, _u, message: received.append(bytes(message.payload))
    client.connect(conn.host, conn.port, keepalive=10)
    client.loop_start()
    wait_for(lambda: sessions, 10, f"CONNACK for {client_id}")
    return client, sessions


def _close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def test_mosquitto_keeps_persistent_sessions_across_a_restart(
    config: StackConfig, namespace: str
) -> None:
    manager.up(config, only=["mosquitto"], report=lambda _: None)
    topic = f"{namespace}/bridge"
    subscriber, _ = _connect(config, f"{namespace}-bridge", clean=False)
    subscribed = threading.Event()
    subscriber.on_subscribe = lambda *_: subscribed.set()
    subscriber.subscribe(topic, qos=1)
    wait_for(subscribed.is_set, 10, "SUBACK")
    _close(subscriber)

    publisher, _ = _connect(config, f"{namespace}-agent", clean=True)
    info = publisher.publish(topic, b"queued while the bridge was away", qos=1)
    info.wait_for_publish(timeout=10)
    _close(publisher)

    stopped = manager.down(config, only=["mosquitto"], report=lambda _: None)
    assert [o.result for o in stopped] == ["stopped"]
    manager.up(config, only=["mosquitto"], report=lambda _: None)

    received: list[bytes] = []
    subscriber, sessions = _connect(config, f"{namespace}-bridge", clean=False, received=received)
    try:
        wait_for(lambda: received, 10, "the queued message after the broker restart")
    finally:
        _close(subscriber)
    assert sessions == [True]
    assert received == [b"queued while the bridge was away"]


def test_down_refuses_a_pid_that_is_not_ours(config: StackConfig) -> None:
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        cmdline = Path(f"/proc/{stranger.pid}/cmdline")
        wait_for(lambda: cmdline.read_bytes().startswith(b"sleep"), 10, "sleep to be exec'd")
        pid_file = config.server_dir("kafka") / "kafka.pid"
        pid_file.parent.mkdir(parents=True)
        pid_file.write_text(f"{stranger.pid}\n")
        outcomes = {o.name: o for o in manager.down(config, report=lambda _: None)}
        assert outcomes["kafka"].result == "refused"
        assert str(stranger.pid) in outcomes["kafka"].detail
        assert outcomes["mosquitto"].result == "not running"
        assert stranger.poll() is None, "down killed a process that was not ours"
        assert not pid_file.exists()  # the stale pid file is gone, the process is not
    finally:
        stranger.kill()
        stranger.wait()


def test_up_names_a_port_taken_by_someone_else(config: StackConfig) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", config.ports.mqtt_tls))
        squatter.listen()
        with pytest.raises(StackError, match=f"port {config.ports.mqtt_tls} \\(mosquitto\\)"):
            manager.up(config, only=["mosquitto"], report=lambda _: None)
    assert manager.status(config, only=["mosquitto"])[0].state == "stopped"
