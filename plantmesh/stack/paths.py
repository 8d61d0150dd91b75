"""Where the local stack keeps its downloads and builds (cache) and its runtime files (state),
and which loopback ports it uses. Both directories live outside the repository."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from plantmesh.stack.errors import StackError

HOST = "127.0.0.1"
KAFKA_VERSION = "4.1.1"
LOG4J_SLF4J_VERSION = "2.24.3"  # Kafka's published pom leaves out the logging binding
INFLUXDB_VERSION = "1.8.10"

DEFAULT_MQTT_PORT = 11883
DEFAULT_KAFKA_PORT = 19092
DEFAULT_INFLUX_PORT = 18086
DEFAULT_POSTGRES_PORT = 15432

MQTT_PORT_VAR = "PLANTMESH_STACK_MQTT_PORT"
MQTTS_PORT_VAR = "PLANTMESH_STACK_MQTTS_PORT"
KAFKA_PORT_VAR = "PLANTMESH_STACK_KAFKA_PORT"
INFLUX_PORT_VAR = "PLANTMESH_STACK_INFLUX_PORT"
POSTGRES_PORT_VAR = "PLANTMESH_STACK_POSTGRES_PORT"
INSECURE_VAR = "PLANTMESH_STACK_INSECURE"
INSECURE_MARKER = "insecure"
"""A file in the state directory: the stack was brought up with `--insecure`."""


@dataclass(frozen=True)
class Ports:
    mqtt: int = DEFAULT_MQTT_PORT
    kafka: int = DEFAULT_KAFKA_PORT
    influx: int = DEFAULT_INFLUX_PORT
    postgres: int = DEFAULT_POSTGRES_PORT
    mqtts: int | None = None
    """Mosquitto's TLS listener; None: the MQTT port + 1, so a stack given only free ports
    for the others never collides with another stack's TLS listener."""

    @property
    def mqtt_tls(self) -> int:
        return self.mqtt + 1 if self.mqtts is None else self.mqtts

    @property
    def kafka_controller(self) -> int:
        return self.kafka + 1

    @property
    def influx_rpc(self) -> int:
        """InfluxDB's backup/restore RPC port; it must not collide with another stack's."""
        return self.influx + 2


def _default_cache(environ: Mapping[str, str]) -> Path:
    if explicit := environ.get("PLANTMESH_CACHE"):
        return Path(explicit).expanduser()
    xdg = environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(xdg).expanduser() / "plantmesh"


def _port(environ: Mapping[str, str], name: str, default: int, span: int) -> int:
    raw = environ.get(name)
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise StackError(f"{name}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535 - span:
        raise StackError(f"{name}={port} is out of range (1..{65535 - span})")
    return port


@dataclass(frozen=True)
class StackConfig:
    """Everything that decides where a stack lives; two configs with different state dirs and
    ports are two independent stacks that can share one cache."""

    cache: Path
    state: Path
    ports: Ports = field(default_factory=Ports)
    insecure: bool = False
    """Servers without authentication or TLS (`plantmesh stack up --insecure`): for debugging
    only. Set by PLANTMESH_STACK_INSECURE=1 or by the marker `up --insecure` leaves in the state
    directory, so `stack env` and the tests see the mode the stack was started in."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StackConfig:
        env = os.environ if environ is None else environ
        cache = _default_cache(env).absolute()
        state = Path(env["PLANTMESH_STATE"]).expanduser() if env.get("PLANTMESH_STATE") else None
        mqtts = _port(env, MQTTS_PORT_VAR, 0, 0) or None
        ports = Ports(
            mqtt=_port(env, MQTT_PORT_VAR, DEFAULT_MQTT_PORT, 0 if mqtts else 1),
            kafka=_port(env, KAFKA_PORT_VAR, DEFAULT_KAFKA_PORT, 1),
            influx=_port(env, INFLUX_PORT_VAR, DEFAULT_INFLUX_PORT, 2),
            postgres=_port(env, POSTGRES_PORT_VAR, DEFAULT_POSTGRES_PORT, 0),
            mqtts=mqtts,
        )
        state = (state or cache / "state").absolute()
        insecure = env.get(INSECURE_VAR, "") not in ("", "0") or (state / INSECURE_MARKER).exists()
        return cls(cache=cache, state=state, ports=ports, insecure=insecure)

    def with_insecure(self, insecure: bool) -> StackConfig:
        """This stack in the other mode, remembered for later commands (the marker file)."""
        marker = self.state / INSECURE_MARKER
        if insecure:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text("brought up with --insecure: servers without authentication\n")
        else:
            marker.unlink(missing_ok=True)
        return StackConfig(cache=self.cache, state=self.state, ports=self.ports, insecure=insecure)

    def server_dir(self, name: str) -> Path:
        return self.state / name
