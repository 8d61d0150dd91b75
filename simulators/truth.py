"""Ground truth: every injected event as a JSON line, written when the event begins, so the
alerts a pipeline raised can be scored against what really happened (plantmesh.scoring).

    {"event": 3, "kind": "oscillation", "plant": "plant-a", "area": "machining", "line": "line3",
     "machine": "mill-01", "signal": "vibration_rms", "protocol": "opcua",
     "start": "2026-03-01T06:02:00Z", "end": "2026-03-01T06:12:00Z",
     "start_s": 120.0, "end_s": 720.0, "severity": "high", "should_alert": true, "speed": 1.0}

Times are wall-clock, like every source timestamp of a run: an event scripted at scenario second
600 of a run at speed 5 begins 120 s of wall time after tick 0 (`start_s` 120), and lasts its
`duration_s` / 5 (`end_s`). `speed` is the run's (a file from before it existed: 1).
`end` is null for an event that lasts until the run ends. A server event (plc_restart, comms_loss,
clock_skew) concerns every machine the server serves: one line per machine, all with the same
`event` index, with `signal` null (any signal of the machine); scoring groups them back into one
event. `start`/`end` are true time, never skewed; `end` is where the event ends as planned when
it begins. `should_alert` says whether the event
warrants an alert (the kind's default or the event's `should_alert:`); a file written before the
field existed gets the kind's default when read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from plantmesh.scoring import truth as shared_truth
from simulators.event_config import (
    SIGNAL_EVENTS,
    EventConfig,
    ServerEvent,
    StateFlapping,
    should_alert_by_default,
)
from simulators.network import MachineConfig, NetworkConfig
from simulators.records import JsonLinesWriter


class TruthRecord(shared_truth.TruthRecord):
    """A truth line (plantmesh.scoring.truth); read from a file from before `should_alert`, it
    gets the kind's default, which only the simulators know."""

    @staticmethod
    def default_should_alert(kind: str) -> bool:
        return should_alert_by_default(kind)


def truth_records(
    event: EventConfig,
    index: int,
    network: NetworkConfig,
    instant: Callable[[float], datetime],
    *,
    origin: datetime | None = None,
    speed: float = 1.0,
) -> list[TruthRecord]:
    """The truth lines of one event. `instant` maps scenario seconds to (wall-clock) time;
    `start_s`/`end_s` are seconds of that time after `origin`, tick 0 (default: instant(0))."""
    zero = instant(0.0) if origin is None else origin

    def elapsed(at: datetime) -> float:
        return (at - zero).total_seconds()

    plant = network.plant(event.plant)
    machines: list[tuple[MachineConfig, str | None]]
    if isinstance(event, ServerEvent):
        machines = [
            (m, None)
            for m in plant.machines
            if event.protocol is None or m.protocol.value == event.protocol
        ]
    else:
        assert isinstance(event, (*SIGNAL_EVENTS, StateFlapping))
        machine = plant.machine(event.machine)
        assert machine is not None, "events are checked against the network when loaded"
        machines = [(machine, event.signal)]
    start = instant(event.start_s)
    end = instant(event.end_s) if event.end_s is not None else None
    return [
        TruthRecord(
            event=index,
            kind=event.kind,
            plant=plant.id,
            area=machine.area,
            line=machine.line,
            machine=machine.id,
            signal=signal,
            protocol=machine.protocol.value,
            start=start,
            end=end,
            start_s=elapsed(start),
            end_s=elapsed(end) if end is not None else None,
            severity=event.expected_severity.value,
            should_alert=event.expected_alert,
            speed=speed,
        )
        for machine, signal in machines
    ]


class TruthWriter(JsonLinesWriter):
    """Appends truth lines as events begin, flushed at once (a reader may follow the file)."""


def read_truth(path: Path | str) -> list[TruthRecord]:
    """The truth file's records; a bad line raises TruthFileError (a ValueError) naming it."""
    return shared_truth.read_truth(path, TruthRecord)
