"""Small agent configs and an asset registry on disk, for the config checks of ingest and
alerting (plantmesh.registry_check): one press over OPC UA and one pump over Modbus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REGISTRY: dict[str, Any] = {
    "version": "t1",
    "classes": {
        "press": {"signals": {"bearing_temp": "degC", "pressure": "bar", "state": None}},
        "pump": {"signals": {"flow": "l/min", "speed": "rpm"}},
    },
    "plants": {
        "plant-a": {
            "machines": {"press-01": "press", "pump-01": "pump"},
            "tags": {"press": {"BRG_TEMP_F": {"signal": "bearing_temp", "unit": "degF"}}},
        }
    },
}


def node(machine: str, signal: str, unit: str | None = None) -> dict[str, Any]:
    entry = {"node_id": f"ns=2;s={machine}.{signal}", "area": "a", "line": "l",
             "machine": machine, "signal": signal}  # fmt: skip
    return entry if unit is None else {**entry, "unit": unit}


def register(signal: str, address: int, unit: str | None) -> dict[str, Any]:
    return {"signal": signal, "address": address, "type": "uint16", "unit": unit}


def agent(
    tmp_path: Path,
    nodes: list[dict[str, Any]],
    registers: list[dict[str, Any]] | None = None,
    plant: str = "plant-a",
    name: str = "agent.yaml",
) -> Path:
    """An agent config with one OPC UA source of `nodes` and, with `registers`, a Modbus pump-01
    whose profile is a file next to it."""
    sources: list[dict[str, Any]] = [
        {"type": "opcua", "name": "plc", "endpoint": "opc.tcp://127.0.0.1:4840", "nodes": nodes}
    ]
    if registers is not None:
        profile = tmp_path / "pump-profile.yaml"
        profile.write_text(yaml.safe_dump({"name": "pump", "registers": registers}))
        device = {"unit_id": 1, "profile": profile.name, "area": "a", "line": "l",
                  "machine": "pump-01"}  # fmt: skip
        sources.append({"type": "modbus", "name": "mb", "host": "127.0.0.1", "devices": [device]})
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"gateway_id": "gw-a", "plant": plant, "sources": sources}))
    return path


def registry(tmp_path: Path, spec: dict[str, Any] | None = None) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(REGISTRY if spec is None else spec))
    return path
