"""A centrifugal pump: flow follows the demand (load), head follows the pump curve, and an energy
meter counts kilowatt-hours."""

from __future__ import annotations

from typing import ClassVar

from simulators.machines.base import MachineModel
from simulators.machines.noise import SmoothNoise
from simulators.signals import SignalKind, SignalSpec

RATED_FLOW = 180.0  # m3/h
SHUTOFF_HEAD = 6.0  # bar at zero flow and full speed


class CentrifugalPump(MachineModel):
    machine_class = "centrifugal_pump"
    description = "centrifugal cooling-water pump"
    nominal_speed = 2950.0
    idle_speed_fraction = 0.6  # minimum-flow recirculation
    idle_load = 0.3
    no_load_current = 18.0
    full_load_current = 75.0
    temp_rise_full_load = 28.0
    vibration_base = 1.4
    vibration_per_load = 1.2
    extra_signals: ClassVar[tuple[SignalSpec, ...]] = (
        SignalSpec("pressure", "bar", 0, 10, description="discharge pressure"),
        SignalSpec("flow", "m3/h", 0, 250),
        SignalSpec("energy", "kWh", 0, 42_949_672, SignalKind.COUNTER, "energy meter"),
    )

    def _init_extra(self) -> None:
        self._flow_noise = SmoothNoise(self.rng, sigma=2.0, tau_s=15.0, dt=self.dt)
        self.energy_kwh = self.rng.uniform(10_000.0, 100_000.0)

    def _advance_extra(self) -> None:
        self._flow_noise.step()
        power_kw = (4.0 + 40.0 * self.load) * self.speed_fraction
        self.energy_kwh += power_kw * self.dt / 3600.0

    def _measure_extra(self) -> dict[str, float]:
        gauss = self.rng.gauss
        flow = max(
            0.0,
            RATED_FLOW * self.speed_fraction * (0.5 + 0.5 * self.load) + self._flow_noise.value,
        )
        head = SHUTOFF_HEAD * self.speed_fraction**2 - 1.5 * (flow / RATED_FLOW) ** 2
        return {
            "pressure": max(0.0, head + gauss(0.0, 0.01)),
            "flow": flow + gauss(0.0, 0.2),
            "energy": self.energy_kwh,
        }
