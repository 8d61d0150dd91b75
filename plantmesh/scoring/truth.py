"""Ground-truth lines as the simulators write them (simulators.truth writes them; this reads them),
one injected event per JSON line:

    {"event": 3, "kind": "oscillation", "plant": "plant-a", "area": "machining", "line": "line3",
     "machine": "mill-01", "signal": "vibration_rms", "protocol": "opcua",
     "start": "2026-03-01T06:02:00Z", "end": "2026-03-01T06:12:00Z",
     "start_s": 120.0, "end_s": 720.0, "severity": "high", "should_alert": true, "speed": 1.0}

`end` null: the event lasts until the run ends; `signal` null: the whole machine (one line per
machine of a server event, sharing `event`). A file from before `should_alert` existed gets
`default_should_alert(kind)`: here always true; the simulators, who know each kind, override it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar


def iso_utc(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


class TruthFileError(ValueError):
    """A truth line that cannot be read: the message names the file (or source) and line."""


@dataclass(frozen=True)
class TruthRecord:
    event: int  # index of the event (network file's events first, then the scenario's)
    kind: str
    plant: str
    area: str
    line: str
    machine: str
    signal: str | None  # None: the whole machine (server events)
    protocol: str
    start: datetime
    end: datetime | None  # None: until the run ended
    start_s: float
    end_s: float | None
    severity: str
    should_alert: bool  # False: harmless, an alert on it is a false alert
    speed: float = 1.0  # scenario seconds per wall-clock second of the run

    @staticmethod
    def default_should_alert(kind: str) -> bool:
        """Whether an event of `kind` warrants an alert when its line does not say."""
        return True

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"] = iso_utc(self.start)
        data["end"] = iso_utc(self.end) if self.end else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            **{
                "should_alert": cls.default_should_alert(data["kind"]),  # a file from before
                **data,
                "start": datetime.fromisoformat(data["start"]),
                "end": datetime.fromisoformat(data["end"]) if data.get("end") else None,
            }
        )


R = TypeVar("R", bound=TruthRecord)


def parse_truth(lines: Iterable[str], where: str, record: type[R]) -> list[R]:
    """The records of truth lines (blank ones skipped); a bad line raises TruthFileError naming
    `where` and the line number."""
    found = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            found.append(record.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            problem = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            raise TruthFileError(f"{where}:{number}: not a truth line: {problem}") from None
    return found


def read_truth(path: Path | str, record: type[R]) -> list[R]:
    """The records of a truth file, as `record` (TruthRecord, or a subclass that knows more)."""
    with Path(path).open(encoding="utf-8") as file:
        return parse_truth(file, str(path), record)
