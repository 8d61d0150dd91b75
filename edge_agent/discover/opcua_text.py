"""The address-space tree as text: one line per node, indented by depth, with node id, browse
name, and for a Variable its data type, current value, unit and status."""

from __future__ import annotations

from asyncua import ua

from edge_agent.discover.opcua_tree import FoundNode, Tree

INDENT = "  "
MAX_VALUE_CHARS = 60


def format_tree(tree: Tree) -> str:
    lines = [_line(depth, node) for depth, node in tree.root.walk()]
    summary = f"{tree.count} nodes, {tree.variables} variables"
    if tree.truncated:
        summary += f" (stopped at --max-nodes {tree.max_nodes})"
    return "\n".join([*lines, summary])


def truncation_message(tree: Tree) -> str:
    return (
        f"discover: stopped at {tree.max_nodes} nodes (--max-nodes): the tree shown is "
        "incomplete; narrow it with --root and --depth, or raise --max-nodes"
    )


def _line(depth: int, node: FoundNode) -> str:
    head = f"{INDENT * depth}{node.browse_name or '<no name>'}  {node.node_id.to_string()}"
    if not node.is_variable:
        kind = node.node_class.name if node.node_class else "Object"
        note = "" if node.expanded else "  (standard node, not walked: --standard)"
        return f"{head}  [{kind}]{note}"
    value, status = format_value(node.value)
    unit = f" {node.unit}" if node.unit else ""
    return f"{head}  {node.data_type or '?'} = {value}{unit}  ({status})"


def format_value(value: ua.DataValue | None) -> tuple[str, str]:
    """(the value as text, its status name)."""
    if value is None:
        return "-", "not read"
    status = value.StatusCode.name if value.StatusCode is not None else "Good"
    raw = value.Value.Value if value.Value is not None else None
    if raw is None:
        return "-", status
    if isinstance(raw, float):
        text = f"{raw:.6g}"
    elif isinstance(raw, list):
        shown = ", ".join(str(v) for v in raw[:5])
        text = f"[{shown}{', ...' if len(raw) > 5 else ''}] ({len(raw)} items)"
    elif isinstance(raw, str):
        text = repr(raw)
    elif isinstance(raw, bool | int):
        text = str(raw)
    elif isinstance(raw, ua.LocalizedText):
        text = repr(raw.Text)
    else:
        text = type(raw).__name__
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 3] + "..."
    return text, status
