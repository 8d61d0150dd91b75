"""Sources read PLCs and hand every reading to a sink. One module per protocol, registered in
`build_source` by the config's `type`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from edge_agent.reading_json import MachineJson
from plantmesh.contracts import Reading, SourceHealth

ReadingSink = Callable[[MachineJson, list[str]], None]
"""Takes one machine's readings as JSON (edge_agent.reading_json) without blocking: the
publisher's bounded queue. Sources encode each reading once, from precomputed pieces; nothing
on the way to MQTT parses or builds a model again."""


def decoding(collect: Callable[[Reading], None]) -> ReadingSink:
    """A sink that hands each reading on as a model decoded, and so validated, from exactly the
    JSON the agent would publish (tests, and code embedding a source)."""

    def take(machine: MachineJson, readings: list[str]) -> None:
        for text in readings:
            collect(Reading.model_validate_json(text))

    return take


class SourceState:
    """What a source reports about itself in the gateway's health message."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.connected = False
        self.errors = 0
        self.readings = 0
        self._last_seen: float | None = None

    def seen(self, count: int = 1) -> None:
        self.readings += count
        self._last_seen = time.monotonic()

    def health(self) -> SourceHealth:
        age = None if self._last_seen is None else round(time.monotonic() - self._last_seen, 3)
        return SourceHealth(
            name=self.name, connected=self.connected, errors=self.errors, last_seen_age_s=age
        )


class Source(Protocol):
    """Reads PLCs and hands readings to its sink. Its tasks run until cancelled and never raise
    for PLC or network trouble: they count it, log it once and retry with backoff."""

    name: str

    def start(self, tg: asyncio.TaskGroup) -> list[asyncio.Task[None]]:
        """Create this source's named tasks in the agent's TaskGroup."""
        ...

    def health(self) -> list[SourceHealth]:
        """One entry per connection (a Modbus source has one per device)."""
        ...
