"""Scripted events at work: what each kind does to a signal, a machine or a plant's server at a
simulated instant. The configuration of each kind is in simulators.event_config; here is its
behaviour. Every event draws from its own random generator, so adding an event never shifts a
machine's random stream (the rest of the plant stays exactly as it would have been)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from simulators.event_config import (
    BadQuality,
    ClockSkew,
    CommsLoss,
    Drift,
    EventConfig,
    Excursion,
    Flatline,
    ModbusFailure,
    Oscillation,
    PlcRestart,
    ServerEvent,
    SignalEventConfig,
    Spikes,
    StateFlapping,
    Step,
)
from simulators.machines import MachineModel
from simulators.network import Protocol
from simulators.signals import MachineState, Quality


class SignalDisturbance:
    """Bends one signal of one machine inside its window; outside it returns the model's value."""

    def __init__(self, config: SignalEventConfig, protocol: Protocol, rng: random.Random) -> None:
        self.config = config
        self.plant = config.plant
        self.machine = config.machine
        self.signal = config.signal
        self.protocol = protocol
        self._rng = rng
        self._held: float | None = None  # flatline and frozen values
        self._next_spike = config.start_s + (
            rng.expovariate(1.0 / config.every_s) if isinstance(config, Spikes) else 0.0
        )

    def apply(self, t_s: float, value: float) -> float:
        """The signal's value at simulated time `t_s`, given what the model says."""
        c = self.config
        if not c.active(t_s):
            self._held = None
            return value
        elapsed = t_s - c.start_s
        if isinstance(c, Excursion):
            return c.value + self._rng.gauss(0.0, c.noise)
        if isinstance(c, Step):
            return value + c.delta
        if isinstance(c, Drift):
            return value + c.rate_per_s * elapsed
        if isinstance(c, Oscillation):
            ramp = min(1.0, elapsed / c.ramp_s)
            return value + c.amplitude * ramp * math.sin(2.0 * math.pi * elapsed / c.period_s)
        if isinstance(c, Spikes):
            return value + (c.magnitude if self._spiking(t_s, c) else 0.0)
        if isinstance(c, Flatline) or self._frozen(c):
            if self._held is None:
                self._held = value
            return self._held
        return value  # bad_quality, uncertain: the value keeps moving

    def _spiking(self, t_s: float, c: Spikes) -> bool:
        while t_s >= self._next_spike + c.width_s:
            self._next_spike += c.width_s + self._rng.expovariate(1.0 / c.every_s)
        return t_s >= self._next_spike

    def _frozen(self, c: SignalEventConfig) -> bool:
        if not isinstance(c, BadQuality):
            return False
        if self.protocol == Protocol.MODBUS:
            return True  # an exception or a stale register: either way the last good value
        return c.quality == "bad"

    def quality(self, t_s: float) -> Quality:
        """What the server reports with the value (Modbus: BAD means an exception answer)."""
        c = self.config
        if not isinstance(c, BadQuality) or not c.active(t_s):
            return Quality.GOOD
        if self.protocol == Protocol.MODBUS:
            return Quality.BAD if c.modbus == ModbusFailure.EXCEPTION else Quality.GOOD
        return Quality(c.quality)


class StateDriver:
    """Forces a machine through a cycle of states; its normal schedule resumes afterwards."""

    def __init__(self, config: StateFlapping) -> None:
        self.config = config
        self.plant = config.plant
        self.machine = config.machine

    def drive(self, t_s: float, model: MachineModel) -> None:
        c = self.config
        if not c.active(t_s):
            return
        phase = int((t_s - c.start_s) // c.period_s)
        wanted = MachineState[c.states[phase % len(c.states)].upper()]
        phase_end = min(c.start_s + (phase + 1) * c.period_s, c.start_s + c.duration_s)
        # Held to the end of the phase (the tick's own advance counts one tick off first);
        # after the window the machine's own schedule resumes.
        model.force_state(wanted, hold_s=phase_end - t_s + model.dt)


class ServerSchedule:
    """A plant's server events: when each server is down, silent or skewed, and when a PLC
    restart resets counters."""

    def __init__(self, events: Sequence[ServerEvent]) -> None:
        self.events = list(events)
        self._restarted: set[tuple[int, str, Protocol]] = set()

    @staticmethod
    def _concerns(event: ServerEvent, plant: str, protocol: Protocol) -> bool:
        return event.plant == plant and event.protocol in (None, protocol.value)

    def down(self, plant: str, protocol: Protocol, t_s: float) -> bool:
        """The server is gone: not listening, its connections closed."""
        return any(
            self._concerns(e, plant, protocol)
            and e.active(t_s)
            and (isinstance(e, PlcRestart) or (isinstance(e, CommsLoss) and e.mode == "refuse"))
            for e in self.events
        )

    def silent(self, plant: str, protocol: Protocol, t_s: float) -> bool:
        """The server keeps its connections but answers nothing."""
        return any(
            self._concerns(e, plant, protocol)
            and e.active(t_s)
            and isinstance(e, CommsLoss)
            and e.mode == "silent"
            for e in self.events
        )

    def skew_s(self, plant: str, protocol: Protocol, t_s: float) -> float:
        return sum(
            e.offset_s
            for e in self.events
            if isinstance(e, ClockSkew) and self._concerns(e, plant, protocol) and e.active(t_s)
        )

    def restarts_done(self, plant: str, protocol: Protocol, t_s: float) -> bool:
        """True once for each PLC restart whose downtime has ended by `t_s`."""
        done = False
        for i, e in enumerate(self.events):
            end = e.end_s
            if (
                isinstance(e, PlcRestart)
                and self._concerns(e, plant, protocol)
                and end is not None
                and t_s >= end
                and (i, plant, protocol) not in self._restarted
            ):
                self._restarted.add((i, plant, protocol))
                done = True
        return done


def is_server_event(config: EventConfig) -> bool:
    return isinstance(config, (PlcRestart, CommsLoss, ClockSkew))


def event_rng(seed: int, index: int) -> random.Random:
    return random.Random(f"{seed}:event:{index}")
