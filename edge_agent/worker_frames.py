"""What the agent and a worker process (edge_agent.worker_process) tell each other: frames of a
4-byte length and a pickle.

    agent -> worker (stdin, once):  ("setup", [AgentConfig, log level, log format])
    worker -> agent (stdout):       ("readings", [(machine key, asset JSON, [reading JSON, ...]), ...])
                                    ("health", [SourceHealth as a dict, ...])

The config goes as the model itself, not its JSON: a JSON dump masks secrets (an OPC UA user's
password, a key's passphrase), which the worker needs to log in.
Pickle, because both ends are this package in one installation and the agent starts the
worker itself: nothing else writes to that pipe.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

_LENGTH = struct.Struct(">I")

SETUP = "setup"
READINGS = "readings"
HEALTH = "health"

MachineReadings = tuple[str, str, list[str]]
"""(machine key, the asset's JSON, the readings' JSON texts)."""


def frame(kind: str, body: list[Any]) -> bytes:
    data = pickle.dumps((kind, body), protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


async def read_frame(reader: asyncio.StreamReader) -> tuple[str, list[Any]] | None:
    """The next frame, or None at the end of the stream (the worker ended)."""
    try:
        header = await reader.readexactly(_LENGTH.size)
        (length,) = _LENGTH.unpack(header)
        kind, body = pickle.loads(await reader.readexactly(length))
    except asyncio.IncompleteReadError:
        return None
    return str(kind), list(body)
