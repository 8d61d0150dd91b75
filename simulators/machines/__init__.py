"""Machine classes the simulator knows, by the name a network file uses in `class:`."""

from __future__ import annotations

import random

from simulators.machines.air_compressor import AirCompressor
from simulators.machines.base import MachineModel
from simulators.machines.centrifugal_pump import CentrifugalPump
from simulators.machines.cnc_mill import CncMill
from simulators.machines.conveyor import Conveyor
from simulators.machines.hydraulic_press import HydraulicPress
from simulators.signals import SignalSpec

MACHINE_CLASSES: dict[str, type[MachineModel]] = {
    model.machine_class: model
    for model in (HydraulicPress, CentrifugalPump, Conveyor, CncMill, AirCompressor)
}


def machine_signals(machine_class: str) -> dict[str, SignalSpec]:
    return {spec.name: spec for spec in MACHINE_CLASSES[machine_class].signals()}


def create_machine(machine_class: str, rng: random.Random, tick_s: float) -> MachineModel:
    return MACHINE_CLASSES[machine_class](rng, tick_s)


__all__ = ["MACHINE_CLASSES", "MachineModel", "create_machine", "machine_signals"]
