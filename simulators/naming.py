"""Where a client finds things on the simulator's servers."""

from __future__ import annotations

NAMESPACE_URI = "urn:plantmesh:sim"
ENDPOINT_PATH = "/plantmesh"


def opcua_url(host: str, port: int) -> str:
    return f"opc.tcp://{host}:{port}{ENDPOINT_PATH}"


def node_path(*parts: str) -> str:
    """The string identifier of a folder or variable: `plant/area/line/machine[/signal]`.
    Its node id is `ns=<index of NAMESPACE_URI>;s=<path>`."""
    return "/".join(parts)


def expanded_node_id(path: str) -> str:
    """The node id with the namespace URI instead of its index (index-independent)."""
    return f"nsu={NAMESPACE_URI};s={path}"
