"""Scripted events: deliberate departures from normal behaviour at known simulated times, so a
test or the demo knows what the pipeline should detect. (A later issue grows this into a scenario
engine; each kind of event is one class with `apply`.)"""

from __future__ import annotations

import random
from typing import Protocol

from simulators.network import EventConfig, ExcursionEvent, NetworkConfig


class ScriptedEvent(Protocol):
    plant: str
    machine: str
    signal: str

    def apply(self, t_s: float, value: float) -> float:
        """The signal's value at simulated time `t_s`, given what the model says."""
        ...


class Excursion:
    def __init__(self, config: ExcursionEvent, rng: random.Random) -> None:
        self.plant = config.plant
        self.machine = config.machine
        self.signal = config.signal
        self.config = config
        self._rng = rng  # its own generator: an event never shifts the machine's random stream

    def active(self, t_s: float) -> bool:
        return self.config.start_s <= t_s < self.config.start_s + self.config.duration_s

    def apply(self, t_s: float, value: float) -> float:
        if not self.active(t_s):
            return value
        return self.config.value + self._rng.gauss(0.0, self.config.noise)


def build_event(config: EventConfig, rng: random.Random) -> ScriptedEvent:
    return Excursion(config, rng)


def build_events(network: NetworkConfig, seed: int) -> list[ScriptedEvent]:
    return [
        build_event(config, random.Random(f"{seed}:event:{i}"))
        for i, config in enumerate(network.events)
    ]
