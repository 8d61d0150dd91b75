"""What a simulated machine exposes: signal descriptions and the operating state codes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class MachineState(IntEnum):
    """Served as the `state` signal. A number for now; a later issue may serve an enumeration."""

    STOPPED = 0
    RUNNING = 1
    IDLE = 2


class SignalKind(StrEnum):
    ANALOG = "analog"  # a measurement: smooth noise, a new value every tick
    COUNTER = "counter"  # a running total that never decreases
    STATE = "state"  # a MachineState code
    FLAG = "flag"  # 0 or 1; served as a coil or discrete input over Modbus


@dataclass(frozen=True)
class SignalSpec:
    name: str
    unit: str
    low: float  # instrument range (OPC UA EURange), not an alarm limit
    high: float
    kind: SignalKind = SignalKind.ANALOG
    description: str = ""
