"""Walking an OPC UA address space below a root, level by level: every Object and Variable
with its node id and browse name, and for Variables the data type, engineering unit and current
value with its status. Properties (EngineeringUnits, EURange, ...) describe their parent and are
not listed as nodes."""

from __future__ import annotations

import asyncio
import contextlib
import re
from argparse import Namespace
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIdNames, ObjectIds
from asyncua.ua.uaerrors import UaStatusCodeError, UaStringParsingError

from edge_agent.config import OpcUaSourceConfig, split_namespace_uri
from edge_agent.errors import BrowseError
from edge_agent.sources.opcua_browse import (
    BROWSE_CONCURRENCY,
    CHUNK,
    children_of_all,
    property_values,
    resolve_path,
    unit_text,
)
from edge_agent.sources.opcua_client import build_client

OBJECTS = ua.NodeId(ua.Int32(ObjectIds.ObjectsFolder))
_LOOKS_LIKE_NODE_ID = re.compile(r"^(ns=\d+;)?[isgb]=")
# Progress goes to stderr each time this many more nodes were found.
PROGRESS_EVERY = 1000


@dataclass(eq=False)  # identity: a node links to its parent and children
class FoundNode:
    node_id: ua.NodeId
    browse_name: str
    node_class: ua.NodeClass
    parent: FoundNode | None = None
    children: list[FoundNode] = field(default_factory=list)
    expanded: bool = True
    """False for a standard (namespace 0) node below the root that was listed, not walked."""
    data_type: str | None = None
    value: ua.DataValue | None = None
    unit: str | None = None

    @property
    def is_variable(self) -> bool:
        return self.node_class == ua.NodeClass.Variable

    def ancestors(self) -> list[FoundNode]:
        """Parent first, up to the root of the walk."""
        out = []
        node = self.parent
        while node is not None:
            out.append(node)
            node = node.parent
        return out

    def walk(self) -> Iterator[tuple[int, FoundNode]]:
        """(depth, node) in tree order, this node at depth 0."""
        stack: list[tuple[int, FoundNode]] = [(0, self)]
        while stack:
            depth, node = stack.pop()
            yield depth, node
            stack.extend((depth + 1, child) for child in reversed(node.children))


@dataclass
class Tree:
    root: FoundNode
    count: int
    variables: int
    max_nodes: int
    truncated: bool
    """True when the walk stopped at `max_nodes`."""
    namespaces: list[str]

    def find(self, node_id: ua.NodeId) -> FoundNode | None:
        return next((n for _, n in self.root.walk() if n.node_id == node_id), None)


async def parse_node(client: Client, text: str, namespaces: list[str]) -> ua.NodeId:
    """A node id (`ns=2;s=X`, `i=85`, `nsu=<uri>;s=X`) or a browse path under Objects
    (`plant-x/stamping`)."""
    with_uri = split_namespace_uri(text)
    if with_uri is not None:
        uri, rest = with_uri
        if uri not in namespaces:
            raise BrowseError(f"the server has no namespace {uri!r}")
        text = f"ns={namespaces.index(uri)};{rest}"
    if not _LOOKS_LIKE_NODE_ID.match(text):
        return (await resolve_path(client, text)).nodeid
    try:
        return ua.NodeId.from_string(text)
    except (ValueError, UaStringParsingError) as exc:
        raise BrowseError(f"{text!r} is not a valid node id (ns=2;s=Name, i=85, ...)") from exc


async def discover(
    source: OpcUaSourceConfig, args: Namespace, progress: Callable[[str], None]
) -> tuple[Tree, list[ua.NodeId]]:
    """Connect as `source` does (security, user), walk from `args.root` and resolve the picks."""
    client = await build_client(source)
    await asyncio.wait_for(client.connect(), source.request_timeout_s * 2)
    try:
        namespaces = await client.get_namespace_array()
        root = await parse_node(client, args.root, namespaces)
        picks = [await parse_node(client, text, namespaces) for text in args.pick]
        tree = await walk_tree(client, root, args.depth, args.max_nodes, progress, args.standard)
    finally:
        with contextlib.suppress(Exception):  # the answer is in hand; a failed goodbye is not news
            await client.disconnect()
    return tree, picks


async def walk_tree(
    client: Client,
    root_id: ua.NodeId,
    depth: int,
    max_nodes: int,
    progress: Callable[[str], None],
    standard: bool = False,
) -> Tree:
    """The tree below `root_id`, `depth` levels deep, at most `max_nodes` nodes. Standard nodes
    (namespace 0, such as the Server object with its diagnostics) below the root are listed
    but not walked unless `standard`."""
    root = await _root(client, root_id)
    seen = {root_id}
    level, count, truncated, reported = [root], 1, False, 0
    mask = int(ua.NodeClass.Object) | int(ua.NodeClass.Variable)
    for _ in range(depth):
        walk = [n for n in level if n.expanded]
        next_level: list[FoundNode] = []
        for start in range(0, len(walk), BROWSE_CONCURRENCY):
            parents = walk[start : start + BROWSE_CONCURRENCY]
            answers = await children_of_all(
                [client.get_node(p.node_id) for p in parents], mask, skip_properties=True
            )
            for parent, refs in zip(parents, answers, strict=True):
                for ref in refs:
                    node_id = ua.NodeId(ref.NodeId.Identifier, ref.NodeId.NamespaceIndex)
                    if node_id in seen:
                        continue  # address spaces may reference a node twice, or loop
                    if count >= max_nodes:
                        truncated = True
                        break
                    seen.add(node_id)
                    child = FoundNode(
                        node_id,
                        ref.BrowseName.Name or "",
                        ref.NodeClass,
                        parent,
                        expanded=standard or node_id.NamespaceIndex != 0,
                    )
                    parent.children.append(child)
                    next_level.append(child)
                    count += 1
            if count - reported >= PROGRESS_EVERY:
                reported = count
                progress(f"{count} nodes browsed...")
            if truncated:
                break
        level = next_level
        if truncated or not level:
            break
    variables = [n for _, n in root.walk() if n.is_variable]
    await _read_variables(client, variables)
    namespaces = await client.get_namespace_array()
    return Tree(root, count, len(variables), max_nodes, truncated, namespaces)


async def _root(client: Client, root_id: ua.NodeId) -> FoundNode:
    node = client.get_node(root_id)
    try:
        name = await node.read_browse_name()
        node_class = await node.read_node_class()
    except UaStatusCodeError as exc:
        raise BrowseError(f"root {root_id.to_string()}: {exc}") from exc
    return FoundNode(root_id, name.Name or "", node_class)


async def _read_variables(client: Client, variables: list[FoundNode]) -> None:
    """Value (with status) and DataType of every variable, two requests per chunk; then the
    names of the data types and the EngineeringUnits properties."""
    typed: list[tuple[FoundNode, ua.NodeId]] = []
    for start in range(0, len(variables), CHUNK // 2):
        chunk = variables[start : start + CHUNK // 2]
        params = ua.ReadParameters()
        params.NodesToRead = [
            ua.ReadValueId(NodeId=n.node_id, AttributeId=attribute)
            for n in chunk
            for attribute in (AttributeIds.Value, AttributeIds.DataType)
        ]
        results = await client.uaclient.read(params)
        for i, node in enumerate(chunk):
            node.value = results[2 * i]
            data_type = results[2 * i + 1].Value
            if data_type is not None and isinstance(data_type.Value, ua.NodeId):
                typed.append((node, data_type.Value))
    names = await _type_names(client, {type_id for _, type_id in typed})
    for node, type_id in typed:
        node.data_type = names.get(type_id, type_id.to_string())
    nodes = [client.get_node(n.node_id) for n in variables]
    units = await property_values(client, nodes, "0:EngineeringUnits")
    for variable in variables:
        variable.unit = unit_text(units.get(variable.node_id))


async def _type_names(client: Client, type_ids: set[ua.NodeId]) -> dict[ua.NodeId, str]:
    """Standard types by their known names, the server's own by their browse names."""
    names = {
        t: ObjectIdNames[t.Identifier]
        for t in type_ids
        if t.NamespaceIndex == 0 and isinstance(t.Identifier, int) and t.Identifier in ObjectIdNames
    }
    others = [t for t in type_ids if t not in names]
    for start in range(0, len(others), CHUNK):
        chunk = others[start : start + CHUNK]
        read = await client.read_attributes(
            [client.get_node(t) for t in chunk], AttributeIds.BrowseName
        )
        for type_id, value in zip(chunk, read, strict=True):
            if value.Value is not None and isinstance(value.Value.Value, ua.QualifiedName):
                names[type_id] = value.Value.Value.Name or type_id.to_string()
    return names
