"""The production log: every value the simulator served, exactly as a client decodes it, so a
reader downstream (the edge agent, InfluxDB, an alert) can be scored against ground truth."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

from plantmesh.scoring.truth import iso_utc


@dataclass(frozen=True)
class ProductionRecord:
    """One served value: what changed on the wire at one tick."""

    plant: str
    area: str
    line: str
    machine: str
    signal: str
    protocol: str  # "opcua" or "modbus"
    source_ts: datetime  # the tick's wall-clock instant (UTC; at speed N, N scenario s per s)
    value: float | bool  # bool for Modbus coils and discrete inputs
    unit: str
    tick: int
    quality: str = "good"  # "uncertain" or "bad" while a sensor fails (written only then)

    @property
    def series_key(self) -> str:
        """`plant/area/line/machine/signal`, as plantmesh Reading.series_key."""
        return f"{self.plant}/{self.area}/{self.line}/{self.machine}/{self.signal}"

    def to_json(self) -> dict[str, Any]:
        data = {
            "plant": self.plant,
            "area": self.area,
            "line": self.line,
            "machine": self.machine,
            "signal": self.signal,
            "protocol": self.protocol,
            "source_ts": iso_utc(self.source_ts),
            "value": self.value,
            "unit": self.unit,
            "tick": self.tick,
        }
        if self.quality != "good":
            data["quality"] = self.quality
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProductionRecord:
        return cls(**{**data, "source_ts": datetime.fromisoformat(data["source_ts"])})


class JsonLine(Protocol):
    def to_json(self) -> dict[str, Any]: ...


class JsonLinesWriter:
    """Appends objects as JSON lines; flushed once per call so a reader sees whole batches."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, records: Sequence[JsonLine]) -> None:
        if not records:
            return
        if self._file is None:
            self.open()
        assert self._file is not None
        self._file.writelines(json.dumps(r.to_json()) + "\n" for r in records)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class RecordWriter(JsonLinesWriter):
    """Appends production records, one tick per call."""


def read_records(path: Path | str) -> list[ProductionRecord]:
    with Path(path).open(encoding="utf-8") as file:
        return [ProductionRecord.from_json(json.loads(line)) for line in file if line.strip()]
