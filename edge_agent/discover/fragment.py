"""Agent config fragments for what was picked during discovery: one `sources:` entry, checked
against the agent's own config models before it is written, so what lands in the file loads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from asyncua import ua
from pydantic import ValidationError

from edge_agent.config import ModbusSourceConfig, OpcUaSourceConfig
from edge_agent.discover.opcua_tree import OBJECTS, FoundNode, Tree
from edge_agent.sources.opcua_browse import safe_name
from plantmesh.contracts.decoding import describe_validation_error
from plantmesh.modbus_profile import DataType, RegisterSpec

# Secrets never go into the fragment: the agent takes them from the environment (${VAR}).
PASSWORD_VAR = "OPCUA_PASSWORD"
KEY_PASSWORD_VAR = "OPCUA_KEY_PASSWORD"


@dataclass(frozen=True)
class AssetNames:
    """Area / line / machine given on the command line; None: derived."""

    area: str | None = None
    line: str | None = None
    machine: str | None = None


class FragmentError(ValueError):
    """What was picked cannot become a config entry."""


def picked_variables(tree: Tree, picks: list[ua.NodeId]) -> list[FoundNode]:
    """The variables picked: a Variable itself, an Object its Variables (as browsed)."""
    out: list[FoundNode] = []
    for node_id in picks:
        node = tree.find(node_id)
        if node is None:
            raise FragmentError(
                f"--pick {node_id.to_string()}: not in the browsed tree (check --root and --depth)"
            )
        found = [node] if node.is_variable else [c for c in node.children if c.is_variable]
        if not found:
            raise FragmentError(f"--pick {node_id.to_string()}: has no variables below it")
        out.extend(v for v in found if v not in out)
    return out


def portable_node_id(node_id: ua.NodeId, namespaces: list[str]) -> str:
    """`nsu=<uri>;s=...`: the agent looks the index up on every connect, so the entry survives
    a server that numbers its namespaces differently after a restart."""
    index = node_id.NamespaceIndex
    if index == 0 or index >= len(namespaces):
        return node_id.to_string()
    return f"nsu={namespaces[index]};{node_id.to_string().split(';', 1)[1]}"


def asset_of(variable: FoundNode, names: AssetNames) -> dict[str, str]:
    """Machine, line and area from the browse names of the parent, grandparent and great-
    grandparent (below Objects), unless given."""
    above = [a for a in variable.ancestors() if a.node_id != OBJECTS]
    derived = [safe_name(a.browse_name) for a in above[:3]]
    derived += [None] * (3 - len(derived))
    machine, line, area = derived
    return {
        "area": names.area or area or "area",
        "line": names.line or line or "line",
        "machine": names.machine or machine or "machine",
    }


def opcua_fragment(
    source: OpcUaSourceConfig, name: str, tree: Tree, picks: list[ua.NodeId], names: AssetNames
) -> str:
    nodes: list[dict[str, Any]] = []
    taken: set[tuple[str, ...]] = set()
    for variable in picked_variables(tree, picks):
        asset = asset_of(variable, names)
        signal = _unique(safe_name(variable.browse_name) or "signal", asset, taken)
        entry: dict[str, Any] = {
            "node_id": portable_node_id(variable.node_id, tree.namespaces),
            **asset,
            "signal": signal,
        }
        if variable.unit:
            entry["unit"] = variable.unit
        nodes.append(entry)
    entry = {"type": "opcua", "name": name, "endpoint": source.endpoint}
    security = source.security
    if security.policy != "None":
        entry["security"] = {
            key: value
            for key in ("policy", "mode", "certificate", "private_key", "server_certificate")
            if (value := getattr(security, key)) is not None
        }
        if security.private_key_password is not None:
            entry["security"]["private_key_password"] = f"${{{KEY_PASSWORD_VAR}}}"
    if source.username is not None:
        entry["username"] = source.username
        entry["password"] = f"${{{PASSWORD_VAR}}}"
    entry["nodes"] = nodes
    _check(OpcUaSourceConfig, entry)
    return _yaml(entry, source.endpoint)


def modbus_fragment(
    host: str, port: int, name: str, unit_id: int, registers: list[RegisterSpec], names: AssetNames
) -> str:
    profile = {
        "name": safe_name(f"unit-{unit_id}-map"),
        "registers": [_register(r) for r in registers],
    }
    device = {
        "unit_id": unit_id,
        "area": names.area or "area",
        "line": names.line or "line",
        "machine": names.machine or f"unit-{unit_id}",
        "profile": profile,
    }
    entry = {"type": "modbus", "name": name, "host": host, "port": port, "devices": [device]}
    _check(ModbusSourceConfig, entry)
    return _yaml(entry, f"{host}:{port}")


def _register(spec: RegisterSpec) -> dict[str, Any]:
    """Type and orders spelled out even where they are the defaults: the map is read by people."""
    entry: dict[str, Any] = {
        "signal": spec.signal,
        "table": spec.table.value,
        "address": spec.address,
        "type": spec.type.value,
    }
    if spec.width > 1:
        entry["byte_order"], entry["word_order"] = spec.byte_order.value, spec.word_order.value
    elif spec.type != DataType.BOOL:
        entry["byte_order"] = spec.byte_order.value
    if spec.unit:
        entry["unit"] = spec.unit
    return entry


def write_fragment(text: str, output: str) -> None:
    """To the file `output`, or to stdout for `-`."""
    if output == "-":
        print(text, end="")
    else:
        Path(output).write_text(text, encoding="utf-8")


def _unique(signal: str, asset: dict[str, str], taken: set[tuple[str, ...]]) -> str:
    """Two variables of one machine with the same browse name get `_2`, `_3`..."""
    candidate, n = signal, 1
    while (*asset.values(), candidate) in taken:
        n += 1
        candidate = f"{signal[:60]}_{n}"
    taken.add((*asset.values(), candidate))
    return candidate


def _check(model: type[OpcUaSourceConfig | ModbusSourceConfig], entry: dict[str, Any]) -> None:
    try:
        model.model_validate(entry)
    except ValidationError as exc:
        raise FragmentError("; ".join(describe_validation_error(exc))) from None


def _yaml(entry: dict[str, Any], server: str) -> str:
    head = (
        f"# plantmesh agent discover: picked on {server}. Paste the entry under `sources:` of\n"
        "# the agent config; check the area/line/machine names, then run `plantmesh agent\n"
        "# check-config`. Passwords are read from the environment (${...}).\n"
    )
    return head + yaml.safe_dump({"sources": [entry]}, sort_keys=False, allow_unicode=True)
