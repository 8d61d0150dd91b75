"""The alert log: one AlertEvent per line, the same JSON as the Kafka message value."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from alerting.sinks.base import SinkError
from plantmesh.contracts import AlertEvent, encode


class AlertLogSink:
    name = "alert_log"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = None

    async def start(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
        except OSError as exc:
            raise SinkError(f"cannot open alert log {self.path}: {exc.strerror}") from exc

    async def publish(self, events: Sequence[AlertEvent]) -> None:
        if self._file is None:
            await self.start()
        assert self._file is not None
        try:
            for event in events:
                # A line per event and a flush per event: a crash loses at most the line in flight.
                self._file.write(encode(event) + b"\n")
                self._file.flush()
        except OSError as exc:
            raise SinkError(f"cannot write alert log {self.path}: {exc.strerror}") from exc

    async def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
