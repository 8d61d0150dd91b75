"""A fixed-speed screw compressor: loads until the receiver reaches the cut-out pressure, unloads
until it falls to the cut-in pressure, so pressure and current saw-tooth while it runs."""

from __future__ import annotations

from typing import ClassVar

from simulators.machines.base import MachineModel
from simulators.machines.noise import SmoothNoise
from simulators.signals import MachineState, SignalKind, SignalSpec

CUT_IN_BAR = 6.8
CUT_OUT_BAR = 7.8
SUPPLY_BAR_PER_S = 0.035  # receiver pressure rise while loaded, before consumption
UNLOADED_LOAD = 0.35


class AirCompressor(MachineModel):
    machine_class = "air_compressor"
    description = "screw air compressor"
    nominal_speed = 2970.0
    idle_speed_fraction = 1.0  # idle means running unloaded
    idle_load = 0.3
    no_load_current = 20.0
    full_load_current = 85.0
    ambient_temp = 33.0
    temp_rise_full_load = 30.0
    vibration_base = 1.8
    vibration_per_load = 1.0
    loaded = True  # until _init_extra draws it: the base constructor asks for the load first
    extra_signals: ClassVar[tuple[SignalSpec, ...]] = (
        SignalSpec("pressure", "bar", 0, 16, description="receiver pressure"),
        SignalSpec("energy", "kWh", 0, 42_949_672, SignalKind.COUNTER, "energy meter"),
    )

    def _init_extra(self) -> None:
        self.pressure = self.rng.uniform(CUT_IN_BAR, CUT_OUT_BAR)
        self.loaded = self.rng.random() < 0.5
        self.energy_kwh = self.rng.uniform(20_000.0, 200_000.0)
        self._demand_noise = SmoothNoise(self.rng, sigma=0.002, tau_s=60.0, dt=self.dt)

    def _target_load(self) -> float:
        if self.state == MachineState.RUNNING:
            return 0.95 if self.loaded else UNLOADED_LOAD
        return super()._target_load()

    def _advance_extra(self) -> None:
        self._demand_noise.step()
        demand = max(0.0, 0.012 * (1.0 + 3.0 * self._trend()) + self._demand_noise.value)
        supply = SUPPLY_BAR_PER_S if self.loaded and self.state == MachineState.RUNNING else 0.0
        self.pressure = max(0.0, self.pressure + (supply - demand) * self.dt)
        if self.pressure >= CUT_OUT_BAR:
            self.loaded = False
        elif self.pressure <= CUT_IN_BAR:
            self.loaded = True
        power_kw = 10.0 + 80.0 * self.load * self.speed_fraction
        self.energy_kwh += power_kw * self.dt / 3600.0

    def _measure_extra(self) -> dict[str, float]:
        return {
            "pressure": self.pressure + self.rng.gauss(0.0, 0.005),
            "energy": self.energy_kwh,
        }
