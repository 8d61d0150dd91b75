"""What a simulated machine exposes: signal descriptions, operating state codes and the quality a
server reports with a value."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class MachineState(IntEnum):
    """Served as the `state` signal (a number, as most PLCs expose it)."""

    STOPPED = 0
    RUNNING = 1
    IDLE = 2
    FAULT = 3


class SignalKind(StrEnum):
    ANALOG = "analog"  # a measurement: smooth noise, a new value every tick
    COUNTER = "counter"  # a running total that never decreases (but wraps on the wire)
    STATE = "state"  # a MachineState code
    FLAG = "flag"  # 0 or 1; served as a coil or discrete input over Modbus
    WORD = "word"  # a bit field (the alarm word)


class Quality(StrEnum):
    """The quality a server reports: OPC UA status Good / Uncertain / Bad; a Modbus device
    answers an exception for a Bad value (see simulators.events.BadQuality)."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


class AlarmBit(IntEnum):
    """Bits of the `alarm_word` signal, as a PLC latches them from its own measurements."""

    BEARING_HOT = 0  # bearing temperature above the class's alarm limit
    VIBRATION_HIGH = 1  # vibration velocity above ISO 10816 zone C/D for the class
    MOTOR_OVERLOAD = 2  # motor current above 110 % of full-load current
    FAULT = 3  # machine in the fault state
    SENSOR_FAILURE = 4  # a sensor reports Bad quality


@dataclass(frozen=True)
class SignalSpec:
    name: str
    unit: str
    low: float  # instrument range (OPC UA EURange), not an alarm limit
    high: float
    kind: SignalKind = SignalKind.ANALOG
    description: str = ""
