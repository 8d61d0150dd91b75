"""A quicker start for asyncua servers.

`Server.init()` builds the OPC UA standard address space (about 6,000 nodes) from generated code,
which takes about a second on these machines, for every server: three plants meant three seconds,
and every test paid one. Here it is built once per process and each server gets its own copy of
the node records (about 0.2 s). The copy is deep where asyncua mutates in place (node and
attribute records, reference lists and descriptions, array values such as NamespaceArray) and
shares the immutable-in-practice leaves (node ids, names, scalar values).

This reaches into asyncua's InternalServer and AddressSpace (pinned by the `sim` extra); if their
shape changes, the server falls back to asyncua's own loading and only startup gets slower.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from asyncua import ua
from asyncua.server.address_space import AttributeValue, NodeData
from asyncua.server.internal_server import InternalServer

log = logging.getLogger(__name__)

_standard_nodes: dict[ua.NodeId, NodeData] | None = None
_fallback_logged = False


async def _template() -> dict[ua.NodeId, NodeData]:
    global _standard_nodes
    if _standard_nodes is None:
        builder = InternalServer()
        await builder.load_standard_address_space()
        _standard_nodes = builder.aspace._nodes
    return _standard_nodes


def _copy_value(value: ua.DataValue | None) -> ua.DataValue | None:
    if value is not None and value.Value is not None and isinstance(value.Value.Value, list):
        variant = dataclasses.replace(value.Value, Value=list(value.Value.Value))
        return dataclasses.replace(value, Value=variant)
    return value


def _copy_reference(ref: ua.ReferenceDescription) -> ua.ReferenceDescription:
    # Keyword construction: several times faster than copy.copy, and a renamed field raises.
    return ua.ReferenceDescription(
        ReferenceTypeId=ref.ReferenceTypeId,
        IsForward=ref.IsForward,
        NodeId=ref.NodeId,
        BrowseName=ref.BrowseName,
        DisplayName=ref.DisplayName,
        NodeClass=ref.NodeClass,
        TypeDefinition=ref.TypeDefinition,
    )


def _copy_nodes(nodes: dict[ua.NodeId, NodeData]) -> dict[ua.NodeId, NodeData]:
    copied: dict[ua.NodeId, NodeData] = {}
    for nodeid, node in nodes.items():
        clone = NodeData(node.nodeid)
        for attr, held in node.attributes.items():
            fresh = AttributeValue(_copy_value(held.value))  # type: ignore[arg-type]
            fresh.value_callback = held.value_callback
            fresh.value_setter = held.value_setter
            clone.attributes[attr] = fresh
        clone.references = [_copy_reference(ref) for ref in node.references]
        clone.call = node.call
        copied[nodeid] = clone
    return copied


class FastInternalServer(InternalServer):
    """An InternalServer whose standard address space is a copy of a per-process template."""

    async def load_standard_address_space(self, shelf_file: Path | None = None) -> None:
        global _fallback_logged
        if shelf_file is None:
            try:
                self.aspace._nodes = _copy_nodes(await _template())
                return
            except (AttributeError, TypeError) as exc:
                if not _fallback_logged:
                    _fallback_logged = True
                    log.warning("asyncua changed shape (%s): loading its address space slowly", exc)
        await super().load_standard_address_space(shelf_file)
