"""A belt conveyor: light motor load, drive torque, counts the parts it carries past the line-end
sensor (and those the inspection station rejects)."""

from __future__ import annotations

from typing import ClassVar

from simulators.machines.base import MachineModel
from simulators.signals import SignalSpec


class Conveyor(MachineModel):
    machine_class = "conveyor"
    description = "belt conveyor"
    speed_unit = "m/min"
    nominal_speed = 30.0
    idle_speed_fraction = 0.2
    load_range = (0.5, 0.7)
    no_load_current = 3.0
    full_load_current = 11.0
    ambient_temp = 28.0
    temp_rise_full_load = 22.0
    bearing_tau_s = 100.0
    vibration_base = 0.6
    vibration_per_load = 0.6
    vibration_alarm = 4.5  # a small machine: ISO 10816 class I zone C/D
    parts_per_hour = 1800.0
    scrap_rate = 0.01
    extra_signals: ClassVar[tuple[SignalSpec, ...]] = (
        SignalSpec("torque", "Nm", 0, 400, description="drive shaft torque"),
    )
    rated_torque_nm = 220.0

    def _measure_extra(self) -> dict[str, float]:
        # Belt friction holds a base torque even unloaded while the belt moves.
        moving = self.speed_fraction > 0.005
        torque = self.rated_torque_nm * (0.25 + 0.75 * self.load) if moving else 0.0
        return {"torque": max(0.0, torque + self.rng.gauss(0.0, 1.0))}
