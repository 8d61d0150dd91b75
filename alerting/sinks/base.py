"""Where alert events go once decided. `publish` returns only when the events are durable in
that sink (flushed, acknowledged), because offsets are committed after every sink returned."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from plantmesh.contracts import AlertEvent


class SinkError(Exception):
    """A recoverable failure: the same events may be published again later."""


class EventSink(Protocol):
    @property
    def name(self) -> str: ...

    async def start(self) -> None: ...

    async def publish(self, events: Sequence[AlertEvent]) -> None: ...

    async def close(self) -> None: ...
