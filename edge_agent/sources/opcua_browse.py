"""Finding what to subscribe on an OPC UA server: browse roots walked by browse name, the
area / line / machine / signal hierarchy below them, and each variable's engineering unit."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import UaError

from edge_agent.config import BrowseRootConfig, OpcUaNodeConfig
from edge_agent.errors import BrowseError
from plantmesh.contracts import AssetPath

log = logging.getLogger(__name__)

# Requests carry at most this many operations: servers cap operations per call.
CHUNK = 500
_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
T = TypeVar("T")
HAS_PROPERTY = ua.NodeId(ua.Int32(ObjectIds.HasProperty))


@dataclass(frozen=True)
class Binding:
    """Where the values of one OPC UA variable go."""

    node: Node
    asset: AssetPath
    signal: str
    unit: str | None


def safe_name(browse_name: str) -> str | None:
    """A browse name as a plantmesh Name ("Line 1" -> "Line_1"); None if nothing is left."""
    name = _NOT_A_NAME.sub("_", browse_name).lstrip("_.-")[:64]
    return name or None


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _children(
    node: Node, node_class: ua.NodeClass, skip_properties: bool = False
) -> list[ua.ReferenceDescription]:
    refs = await node.get_children_descriptions(nodeclassmask=node_class)
    if skip_properties:
        # A machine's Variables are its signals; HasProperty children are metadata about it.
        refs = [r for r in refs if r.ReferenceTypeId != HAS_PROPERTY]
    return refs


async def resolve_root(client: Client, root: BrowseRootConfig) -> Node:
    """The node at `root`, walking Objects by browse name whatever the namespace index."""
    node: Node = client.nodes.objects
    where = "Objects"
    for name in root.path:
        refs = await node.get_children_descriptions()
        match = next((r for r in refs if r.BrowseName.Name == name), None)
        if match is None:
            raise BrowseError(f"browse root {root.root!r}: {where} has no child named {name!r}")
        node = client.get_node(ua.NodeId(match.NodeId.Identifier, match.NodeId.NamespaceIndex))
        where = f"{where}/{name}"
    return node


async def walk_root(client: Client, plant: str, root: Node) -> list[Binding]:
    """Every Variable at area/line/machine/signal depth below `root` (unit not yet known)."""
    level: list[tuple[Node, tuple[str, ...]]] = [(root, ())]
    for _ in ("area", "line", "machine"):
        answers = await asyncio.gather(*(_children(n, ua.NodeClass.Object) for n, _ in level))
        level = [
            (client.get_node(ua.NodeId(r.NodeId.Identifier, r.NodeId.NamespaceIndex)), (*names, n))
            for (_, names), refs in zip(level, answers, strict=True)
            for r in refs
            if (n := _named(r)) is not None
        ]
    answers = await asyncio.gather(
        *(_children(n, ua.NodeClass.Variable, skip_properties=True) for n, _ in level)
    )
    bindings = []
    for (_, (area, line, machine)), refs in zip(level, answers, strict=True):
        asset = AssetPath(plant=plant, area=area, line=line, machine=machine)
        for ref in refs:
            signal = _named(ref)
            if signal is not None:
                node = client.get_node(ua.NodeId(ref.NodeId.Identifier, ref.NodeId.NamespaceIndex))
                bindings.append(Binding(node=node, asset=asset, signal=signal, unit=None))
    return bindings


def _named(ref: ua.ReferenceDescription) -> str | None:
    browse_name = ref.BrowseName.Name or ""
    name = safe_name(browse_name)
    if name is None:
        log.warning("skipping OPC UA node %s: browse name %r is empty", ref.NodeId, browse_name)
    elif name != browse_name:
        log.debug("OPC UA browse name %r is used as %r", browse_name, name)
    return name


def explicit_bindings(client: Client, plant: str, nodes: list[OpcUaNodeConfig]) -> list[Binding]:
    """The configured nodes; one whose node id does not parse is skipped, not fatal."""
    bindings = []
    for item in nodes:
        try:
            node = client.get_node(item.node_id)
        except (UaError, ValueError) as exc:
            log.warning("skipping OPC UA node %r: %s", item.node_id, exc)
            continue
        asset = AssetPath(plant=plant, area=item.area, line=item.line, machine=item.machine)
        bindings.append(Binding(node=node, asset=asset, signal=item.signal, unit=item.unit))
    return bindings


async def read_units(client: Client, bindings: list[Binding]) -> list[Binding]:
    """Fill in each unit from the variable's EngineeringUnits property where it has one.
    Two requests per chunk (translate the path, read the values), not two per variable."""
    missing = [b for b in bindings if b.unit is None]
    units: dict[ua.NodeId, str] = {}
    path = ua.RelativePath.from_string("0:EngineeringUnits")
    for chunk in _chunks(missing):
        paths = [ua.BrowsePath(StartingNode=b.node.nodeid, RelativePath=path) for b in chunk]
        results = await client.uaclient.translate_browsepaths_to_nodeids(paths)
        found = [
            (b, client.get_node(r.Targets[0].TargetId))
            for b, r in zip(chunk, results, strict=True)
            if r.StatusCode.is_good() and r.Targets
        ]
        if not found:
            continue
        values = await client.read_values([eu for _, eu in found])
        for (binding, _), value in zip(found, values, strict=True):
            text = getattr(getattr(value, "DisplayName", None), "Text", None)
            if isinstance(text, str) and text:
                units[binding.node.nodeid] = text
    return [
        b if b.unit is not None else Binding(b.node, b.asset, b.signal, units.get(b.node.nodeid))
        for b in bindings
    ]
