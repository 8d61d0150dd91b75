"""Finding what to read on an OPC UA server: browse roots walked by browse name, the folder
levels below them mapped to area / line / machine (`levels`), explicit nodes (node id, namespace URI or
browse path, resolved again on every connect), each variable's engineering unit and EURange."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError

from edge_agent.config import (
    BrowseRootConfig,
    OpcUaSourceConfig,
    split_namespace_uri,
)
from edge_agent.errors import BrowseError
from edge_agent.sources.opcua_options import ItemOptions, effective_options
from plantmesh.contracts import AssetPath

log = logging.getLogger(__name__)

# Requests carry at most this many operations: servers cap operations per call.
CHUNK = 500
# Browse requests in flight at once while walking a tree.
BROWSE_CONCURRENCY = 50
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
    options: ItemOptions
    eu_range: ua.Range | None = None


@dataclass(frozen=True)
class Unresolved:
    """A configured node this session could not find: its readings carry `status`."""

    asset: AssetPath
    signal: str
    unit: str | None
    address: str
    status: int
    reason: str


def safe_name(browse_name: str) -> str | None:
    """A browse name as a plantmesh Name ("Line 1" -> "Line_1"); None if nothing is left."""
    name = _NOT_A_NAME.sub("_", browse_name).lstrip("_.-")[:64]
    return name or None


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _children(
    node: Node, node_class: ua.NodeClass | int, skip_properties: bool = False
) -> list[ua.ReferenceDescription]:
    # A mask may combine classes (Object | Variable); asyncua passes it on as an integer.
    refs = await node.get_children_descriptions(nodeclassmask=node_class)  # type: ignore[arg-type]
    if skip_properties:
        # A machine's Variables are its signals; HasProperty children are metadata about it.
        refs = [r for r in refs if r.ReferenceTypeId != HAS_PROPERTY]
    return refs


async def resolve_path(client: Client, path: str) -> Node:
    """The node at `path` (browse names under Objects separated by `/`), whatever the namespace
    index of each name."""
    node: Node = client.nodes.objects
    where = "Objects"
    for name in (part for part in path.split("/") if part):
        refs = await node.get_children_descriptions()
        match = next((r for r in refs if r.BrowseName.Name == name), None)
        if match is None:
            raise BrowseError(f"browse path {path!r}: {where} has no child named {name!r}")
        node = client.get_node(ua.NodeId(match.NodeId.Identifier, match.NodeId.NamespaceIndex))
        where = f"{where}/{name}"
    return node


async def resolve_root(client: Client, root: BrowseRootConfig) -> Node:
    """The node at a browse root."""
    return await resolve_path(client, root.root)


async def walk_root(
    client: Client, plant: str, root_node: Node, options: ItemOptions, root: BrowseRootConfig
) -> list[Binding]:
    """Every Variable of the deepest of `root.levels` below `root_node` (unit not yet known),
    its asset path taken from the levels' browse names and the root's fixed parts. A root that
    binds nothing is logged once per walk: a server laid out otherwise than `levels` says."""
    level: list[tuple[Node, dict[str, str]]] = [(root_node, {})]
    found: list[str] = []
    for kind in root.levels:
        answers = await children_of_all([n for n, _ in level], ua.NodeClass.Object)
        level = [
            (_node(client, r), parts if kind == "skip" else {**parts, kind: name})
            for (_, parts), refs in zip(level, answers, strict=True)
            for r in refs
            if (name := _named(r) if kind != "skip" else "") is not None
        ]
        found.append(f"{len(level)} {kind}")
    answers = await children_of_all([n for n, _ in level], ua.NodeClass.Variable, True)
    bindings = []
    for (_, parts), refs in zip(level, answers, strict=True):
        area, line, machine = (_part(parts, root, p) for p in ("area", "line", "machine"))
        asset = AssetPath(plant=plant, area=area, line=line, machine=machine)
        for ref in refs:
            signal = _named(ref)
            if signal is not None:
                bindings.append(Binding(_node(client, ref), asset, signal, None, options))
    if not bindings:
        log.warning(
            "opcua browse root %r bound no variables: levels [%s] below it found %s folders and "
            "no Variables in the last; set `levels` to the server's layout "
            "(`plantmesh agent discover opcua` shows it)",
            root.root,
            ", ".join(root.levels),
            ", ".join(found) or "no",
        )
    return bindings


def _part(parts: dict[str, str], root: BrowseRootConfig, part: str) -> str:
    """A part of the asset path: from its level, else fixed on the root (the config checks
    that one of them gives it)."""
    name = parts.get(part) or getattr(root, part)
    assert isinstance(name, str)
    return name


def _node(client: Client, ref: ua.ReferenceDescription) -> Node:
    return client.get_node(ua.NodeId(ref.NodeId.Identifier, ref.NodeId.NamespaceIndex))


async def children_of_all(
    nodes: Sequence[Node], node_class: ua.NodeClass | int, skip_properties: bool = False
) -> list[list[ua.ReferenceDescription]]:
    """`_children` of every node, BROWSE_CONCURRENCY requests at a time: a thousand machines
    browsed at once would hold a thousand answers in memory together (and flood a small PLC)."""
    answers: list[list[ua.ReferenceDescription]] = []
    for chunk in _chunks(nodes, BROWSE_CONCURRENCY):
        answers.extend(
            await asyncio.gather(*(_children(n, node_class, skip_properties) for n in chunk))
        )
    return answers


def _named(ref: ua.ReferenceDescription) -> str | None:
    browse_name = ref.BrowseName.Name or ""
    name = safe_name(browse_name)
    if name is None:
        log.warning("skipping OPC UA node %s: browse name %r is empty", ref.NodeId, browse_name)
    elif name != browse_name:
        log.debug("OPC UA browse name %r is used as %r", browse_name, name)
    return name


async def explicit_bindings(
    client: Client, source: OpcUaSourceConfig, plant: str
) -> tuple[list[Binding], list[Unresolved]]:
    """The configured nodes, their namespace URIs and browse paths resolved against this server
    as it is now. One that cannot be found is returned as Unresolved, never fatal."""
    bindings: list[Binding] = []
    unresolved: list[Unresolved] = []
    namespaces: list[str] | None = None
    for item in source.nodes:
        asset = AssetPath(plant=plant, area=item.area, line=item.line, machine=item.machine)
        try:
            if item.browse_path is not None:
                node = await resolve_path(client, item.browse_path)
            else:
                assert item.node_id is not None
                with_uri = split_namespace_uri(item.node_id)
                if with_uri is None:
                    node = client.get_node(item.node_id)
                else:
                    if namespaces is None:
                        namespaces = await client.get_namespace_array()
                    uri, rest = with_uri
                    if uri not in namespaces:
                        raise BrowseError(f"the server has no namespace {uri!r}")
                    node = client.get_node(f"ns={namespaces.index(uri)};{rest}")
        except (BrowseError, UaError, ValueError) as exc:
            status = StatusCodes.BadNodeIdUnknown
            unresolved.append(
                Unresolved(asset, item.signal, item.unit, item.address, status, str(exc))
            )
            continue
        options = effective_options(source, item)
        bindings.append(Binding(node, asset, item.signal, item.unit, options))
    return bindings, unresolved


async def property_values(
    client: Client, nodes: Sequence[Node], name: str
) -> dict[ua.NodeId, object]:
    """The value of property `name` (e.g. `0:EngineeringUnits`) of every node that has it.
    Two requests per chunk (translate the paths, read the values), not two per variable."""
    found: dict[ua.NodeId, object] = {}
    path = ua.RelativePath.from_string(name)
    for chunk in _chunks(nodes):
        paths = [ua.BrowsePath(StartingNode=n.nodeid, RelativePath=path) for n in chunk]
        results = await client.uaclient.translate_browsepaths_to_nodeids(paths)
        hits = [
            (n, client.get_node(r.Targets[0].TargetId))
            for n, r in zip(chunk, results, strict=True)
            if r.StatusCode.is_good() and r.Targets
        ]
        if hits:
            values = await client.read_values([prop for _, prop in hits])
            found.update((n.nodeid, v) for (n, _), v in zip(hits, values, strict=True))
    return found


async def read_ranges(client: Client, bindings: list[Binding]) -> list[Binding]:
    """Fill in the EURange of the variables that need one (percent deadbands)."""
    needing = [b.node for b in bindings if b.options.needs_range]
    if not needing:
        return bindings
    ranges = await property_values(client, needing, "0:EURange")
    return [
        replace(b, eu_range=r) if isinstance(r := ranges.get(b.node.nodeid), ua.Range) else b
        for b in bindings
    ]


def unit_text(value: object) -> str | None:
    """The unit an EngineeringUnits property value (EUInformation) displays, if any."""
    text = getattr(getattr(value, "DisplayName", None), "Text", None)
    return text if isinstance(text, str) and text else None


async def read_units(client: Client, bindings: list[Binding]) -> list[Binding]:
    """Fill in each unit from the variable's EngineeringUnits property where it has one."""
    missing = [b.node for b in bindings if b.unit is None]
    values = await property_values(client, missing, "0:EngineeringUnits")
    units = {node_id: text for node_id, value in values.items() if (text := unit_text(value))}
    return [
        b if b.unit is not None else replace(b, unit=units.get(b.node.nodeid)) for b in bindings
    ]
