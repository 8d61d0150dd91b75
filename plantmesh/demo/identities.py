"""The demo on a secured stack: each plant's agent publishes as its own gateway (credentials
issued as `plantmesh gateway add` does), the bridge reads as `bridge` and sends along who may
publish on each topic; in Kafka each service is its own principal (bridge, writer, alerting), so
a demo child can do exactly what its service may do in production, nothing more."""

from __future__ import annotations

from pathlib import Path

import yaml

from plantmesh.connections import MQTT_CA_FILE_VAR, MQTT_PASSWORD_FILE_VAR, MQTT_USERNAME_VAR
from plantmesh.gateways import add_gateway
from plantmesh.stack.credentials import BRIDGE_USER, Gateway
from plantmesh.stack.kafka_security import PASSWORD_FILE_VAR, USERNAME_VAR, password_path
from plantmesh.stack.mosquitto import Mosquitto
from plantmesh.stack.paths import StackConfig

BRIDGE_GATEWAYS_VAR = "PLANTMESH_BRIDGE_GATEWAYS_FILE"
"""The bridge's `gateways:` default (ingest.config reads it: plantmesh imports no service)."""


def agent_gateway(config_file: Path) -> Gateway:
    """The gateway an agent config names (its `gateway_id`, `plant` and `namespace`)."""
    data = yaml.safe_load(config_file.read_text())
    return Gateway(str(data["gateway_id"]), str(data["plant"]), str(data.get("namespace", "")))


def _env(broker: Mosquitto, user: str) -> dict[str, str]:
    return {
        MQTT_USERNAME_VAR: user,
        MQTT_PASSWORD_FILE_VAR: str(broker.credentials.password_file(user)),
        MQTT_CA_FILE_VAR: str(broker.ca_file),
    }


def mqtt_identities(agent_configs: dict[str, Path]) -> dict[str, dict[str, str]]:
    """Per child: the environment that makes it connect as itself ("agent-<plant>" and
    "ingest-bridge"); empty on a stack brought up with --insecure. Gateways that are not
    registered yet are, and the running broker rereads its files."""
    broker = Mosquitto(StackConfig.from_env())
    if not broker.secure:
        return {}
    known = {g.name: g for g in broker.credentials.gateways()}
    identities: dict[str, dict[str, str]] = {}
    added = False
    for plant, path in agent_configs.items():
        gateway = agent_gateway(path)
        if gateway.name not in known:
            add_gateway(gateway, config=broker.config)
            added = True
        elif known[gateway.name] != gateway:
            raise ValueError(
                f"gateway {gateway.name} is registered for plant {known[gateway.name].plant}: "
                f"`plantmesh gateway remove {gateway.name}` first"
            )
        identities[f"agent-{plant}"] = _env(broker, gateway.name)
    if added:
        broker.reload()
    identities["ingest-bridge"] = {
        **_env(broker, BRIDGE_USER),
        BRIDGE_GATEWAYS_VAR: str(broker.credentials.registry_path),
    }
    return identities


KAFKA_PRINCIPALS = {
    "ingest-bridge": "bridge",
    "ingest-writer": "writer",
    "alerting": "alerting",
    "incidents": "alerting",
    "alarms": "alerting",
}
"""The demo's children that use Kafka, and the principal each runs as. Their consumer groups
(`plantmesh-<service>-<run id>`) fall under the prefixed group ACLs of their principal."""


def kafka_identities() -> dict[str, dict[str, str]]:
    """Per child: the environment that makes it reach Kafka as its service's principal; empty
    on a stack brought up with --insecure."""
    config = StackConfig.from_env()
    if config.insecure:
        return {}
    return {
        child: {USERNAME_VAR: user, PASSWORD_FILE_VAR: str(password_path(config, user))}
        for child, user in KAFKA_PRINCIPALS.items()
    }


def merge(*identities: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Per-child environments of several kinds, child by child."""
    merged: dict[str, dict[str, str]] = {}
    for kind in identities:
        for child, env in kind.items():
            merged.setdefault(child, {}).update(env)
    return merged
