"""The agent's side of bench_agent.py's workloads, shared with profile_agent.py: the sources an
agent config needs to read the simulated servers (agent_children.py) the way the benchmark does.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from agent_children import OpcuaShard

REGISTERS = 100
"""Holding registers per simulated Modbus device."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def opcua_shards(variables: int, per_server: int) -> list[OpcuaShard]:
    """Server processes of up to `per_server` variables (10 per machine), distinct machines."""
    machines = -(-per_server // 10)
    shards, first = [], 0
    while first * 10 < variables:
        count = min(machines, variables // 10 - first)
        shards.append(OpcuaShard(free_port(), first, count))
        first += count
    return shards


def opcua_sources(shards: list[OpcuaShard]) -> list[dict[str, Any]]:
    """One agent source per server: subscriptions at 500 ms on every variable."""
    return [
        {
            "type": "opcua",
            "name": f"bench-opc-{i}",
            "endpoint": shard.url,
            "publishing_interval_ms": 500,
            "queue_size": 10,
            "browse": [{"root": "bench"}],
        }
        for i, shard in enumerate(shards)
    ]


def modbus_source(directory: Path, port: int, devices: int) -> dict[str, Any]:
    """One agent source for the Modbus server: every device's registers polled at 1 Hz (the
    profile is written to `directory`)."""
    import yaml

    profile = {
        "name": "bench_device",
        "registers": [{"signal": f"r{i:03}", "address": i} for i in range(REGISTERS)],
    }
    path = directory / "bench_device.yaml"
    path.write_text(yaml.safe_dump(profile))
    device = {"profile": str(path), "area": "area1", "line": "line1", "poll_interval_s": 1.0}
    return {
        "type": "modbus",
        "name": "bench-modbus",
        "host": "127.0.0.1",
        "port": port,
        "timeout_s": 2.0,
        "devices": [
            {**device, "unit_id": u, "machine": f"dev{u:03}"} for u in range(1, devices + 1)
        ],
    }
