"""The demo on a secured stack: each plant's agent publishes as its own gateway (credentials
issued as `plantmesh gateway add` does), the bridge reads as `bridge` and sends along who may
publish on each topic, the other services connect as the stack's operator."""

from __future__ import annotations

from pathlib import Path

import yaml

from plantmesh.connections import MQTT_CA_FILE_VAR, MQTT_PASSWORD_FILE_VAR, MQTT_USERNAME_VAR
from plantmesh.gateways import add_gateway
from plantmesh.stack.credentials import BRIDGE_USER, Gateway
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
