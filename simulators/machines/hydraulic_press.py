"""A hydraulic stamping press: system pressure rises with the forming load."""

from __future__ import annotations

from typing import ClassVar

from simulators.machines.base import MachineModel
from simulators.machines.noise import SmoothNoise
from simulators.signals import SignalSpec


class HydraulicPress(MachineModel):
    machine_class = "hydraulic_press"
    description = "hydraulic stamping press"
    speed_unit = "spm"  # strokes per minute
    nominal_speed = 24.0
    idle_speed_fraction = 0.25
    no_load_current = 25.0
    full_load_current = 90.0
    ambient_temp = 32.0
    temp_rise_full_load = 30.0
    bearing_tau_s = 150.0
    vibration_base = 1.2
    vibration_per_load = 2.0
    parts_per_hour = 1400.0
    extra_signals: ClassVar[tuple[SignalSpec, ...]] = (
        SignalSpec("pressure", "bar", 0, 250, description="main system pressure"),
    )

    def _init_extra(self) -> None:
        self._pressure_noise = SmoothNoise(self.rng, sigma=1.5, tau_s=10.0, dt=self.dt)

    def _advance_extra(self) -> None:
        self._pressure_noise.step()

    def _measure_extra(self) -> dict[str, float]:
        pressure = 30.0 * self.speed_fraction + 170.0 * self.load + self._pressure_noise.value
        return {"pressure": max(0.0, pressure + self.rng.gauss(0.0, 0.3))}
