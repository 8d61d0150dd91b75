"""A CNC milling centre: spindle speed, spindle load in percent and torque, a part every minute
or two."""

from __future__ import annotations

from typing import ClassVar

from simulators.machines.base import MachineModel
from simulators.signals import SignalSpec


class CncMill(MachineModel):
    machine_class = "cnc_mill"
    description = "CNC vertical milling centre"
    nominal_speed = 12_000.0
    idle_speed_fraction = 0.25  # spindle warm-up between jobs
    load_range = (0.45, 0.75)
    no_load_current = 6.0
    full_load_current = 32.0
    ambient_temp = 28.0
    temp_rise_full_load = 32.0
    bearing_tau_s = 90.0
    vibration_base = 0.8
    vibration_per_load = 1.4
    parts_per_hour = 40.0
    extra_signals: ClassVar[tuple[SignalSpec, ...]] = (
        SignalSpec("spindle_load", "%", 0, 150, description="spindle drive load"),
        SignalSpec("torque", "Nm", 0, 120, description="spindle torque"),
    )
    rated_torque_nm = 60.0

    def _measure_extra(self) -> dict[str, float]:
        gauss = self.rng.gauss
        torque = self.rated_torque_nm * self.load if self.speed_fraction > 0.005 else 0.0
        return {
            "spindle_load": max(0.0, 100.0 * self.load + gauss(0.0, 0.5)),
            "torque": max(0.0, torque + gauss(0.0, 0.2)),
        }
