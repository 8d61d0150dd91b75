"""What every simulated machine shares: an operating state that changes now and then (with a
rare fault), a load that follows the state with a slow trend and smooth noise, and the physics most
motor-driven machines have in common: speed, motor current, a bearing temperature that lags the
load, vibration that rises with the machine's imbalance and its wear, good and scrap part counters
and an alarm word the PLC latches from its own measurements.

A model is pure: it draws only from the random generator it is given (so a seed reproduces it
exactly) and it does no I/O. `advance()` moves it one tick; `values()` is what its sensors read.
Classes differ by their parameters and by the extra signals they add (`extra_signals`,
`_advance_extra`, `_measure_extra`).
"""

from __future__ import annotations

import math
import random
from typing import ClassVar

from simulators.machines.noise import SmoothNoise, lag_factor
from simulators.signals import AlarmBit, MachineState, SignalKind, SignalSpec

LOAD_TAU_S = 8.0  # how fast the load follows the operating state
SPEED_TAU_S = 4.0  # ramp-up and ramp-down of the drive
TREND_AMPLITUDE = 0.08  # slow load swing (fraction of full load) over tens of minutes
WEAR_PER_RUNNING_H = 0.002  # wear index gained per running hour (1.0 = bearing due for change)
MEAN_FAULT_S = 4 * 3600.0  # mean running time between two faults
MEAN_FAULT_REPAIR_S = 240.0


class MachineModel:
    machine_class: ClassVar[str]
    description: ClassVar[str] = ""
    speed_unit: ClassVar[str] = "rpm"
    nominal_speed: ClassVar[float]
    idle_speed_fraction: ClassVar[float] = 0.3
    idle_load: ClassVar[float] = 0.15
    load_range: ClassVar[tuple[float, float]] = (0.6, 0.8)  # running load, drawn per machine
    no_load_current: ClassVar[float]
    full_load_current: ClassVar[float]
    ambient_temp: ClassVar[float] = 30.0
    temp_rise_full_load: ClassVar[float] = 30.0  # bearing temperature above ambient at full load
    bearing_tau_s: ClassVar[float] = 120.0
    vibration_base: ClassVar[float] = 1.0  # mm/s at full speed and no load
    vibration_per_load: ClassVar[float] = 1.5
    mean_running_s: ClassVar[float] = 900.0
    mean_idle_s: ClassVar[float] = 60.0
    parts_per_hour: ClassVar[float] = 0.0  # above 0: good_parts and scrap_parts counters
    scrap_rate: ClassVar[float] = 0.02  # fraction of parts scrapped when new; grows with wear
    bearing_alarm_c: ClassVar[float] = 85.0  # alarm word: bearing too hot
    vibration_alarm: ClassVar[float] = 7.1  # alarm word: ISO 10816 zone C/D (mm/s)
    extra_signals: ClassVar[tuple[SignalSpec, ...]] = ()

    def __init__(self, rng: random.Random, tick_s: float) -> None:
        self.rng = rng
        self.dt = tick_s
        self.t_s = 0.0
        self.base_load = rng.uniform(*self.load_range)
        self._trend_period_s = rng.uniform(600.0, 1800.0)
        self._trend_phase = rng.uniform(0.0, 2.0 * math.pi)
        self.ambient = self.ambient_temp + rng.uniform(-2.0, 2.0)
        self.state = MachineState.RUNNING
        self._state_left_s = rng.expovariate(1.0 / self.mean_running_s)
        self._load_noise = SmoothNoise(rng, sigma=0.03, tau_s=30.0, dt=tick_s)
        self._vibration_noise = SmoothNoise(rng, sigma=0.08, tau_s=20.0, dt=tick_s)
        self.load = self._target_load()
        self.speed_fraction = self._target_speed()
        # Start in thermal equilibrium, as a machine that has been running a while would be.
        self.bearing_temp = self._bearing_equilibrium()
        self.parts = float(rng.randint(1_000, 50_000))
        self.scrap = float(math.floor(self.parts * self.scrap_rate))
        # Imbalance is a property of this rotor; wear accumulates with running hours.
        self.imbalance = rng.uniform(0.0, 0.25)
        self.wear = rng.uniform(0.0, 0.3)
        self._init_extra()
        self._readings = self._measure()

    @classmethod
    def signals(cls) -> tuple[SignalSpec, ...]:
        specs = [
            SignalSpec(
                "state", "1", 0, 3, SignalKind.STATE, "0 stopped, 1 running, 2 idle, 3 fault"
            ),
            SignalSpec("running", "1", 0, 1, SignalKind.FLAG, "1 while producing"),
            SignalSpec("speed", cls.speed_unit, 0, round(cls.nominal_speed * 1.2, 3)),
            SignalSpec("motor_current", "A", 0, round(cls.full_load_current * 1.5, 3)),
            SignalSpec("bearing_temp", "degC", 0, 150, description="drive-end bearing"),
            SignalSpec("vibration_rms", "mm/s", 0, 50, description="ISO 10816 velocity RMS"),
        ]
        if cls.parts_per_hour > 0:
            specs.append(SignalSpec("good_parts", "parts", 0, 4_294_967_295, SignalKind.COUNTER))
            specs.append(SignalSpec("scrap_parts", "parts", 0, 4_294_967_295, SignalKind.COUNTER))
        specs.append(
            SignalSpec(
                "alarm_word",
                "1",
                0,
                65535,
                SignalKind.WORD,
                "bit 0 bearing hot, 1 vibration high, 2 motor overload, 3 fault, 4 sensor failure",
            )
        )
        return (*specs, *cls.extra_signals)

    @classmethod
    def alarm_word(cls, values: dict[str, float], sensor_failure: bool = False) -> int:
        """The alarm bits a PLC would latch for these readings (see signals.AlarmBit)."""
        word = 0
        if values.get("bearing_temp", 0.0) > cls.bearing_alarm_c:
            word |= 1 << AlarmBit.BEARING_HOT
        if values.get("vibration_rms", 0.0) > cls.vibration_alarm:
            word |= 1 << AlarmBit.VIBRATION_HIGH
        if values.get("motor_current", 0.0) > 1.1 * cls.full_load_current:
            word |= 1 << AlarmBit.MOTOR_OVERLOAD
        if values.get("state") == MachineState.FAULT:
            word |= 1 << AlarmBit.FAULT
        if sensor_failure:
            word |= 1 << AlarmBit.SENSOR_FAILURE
        return word

    def values(self) -> dict[str, float]:
        """What the sensors read at the current tick (the same until the next `advance`)."""
        return dict(self._readings)

    def advance(self) -> None:
        """Move the machine forward by one tick of simulated time."""
        self.t_s += self.dt
        self._advance_state()
        self._load_noise.step()
        self._vibration_noise.step()
        self.load += (self._target_load() - self.load) * lag_factor(self.dt, LOAD_TAU_S)
        self.speed_fraction += (self._target_speed() - self.speed_fraction) * lag_factor(
            self.dt, SPEED_TAU_S
        )
        self.bearing_temp += (self._bearing_equilibrium() - self.bearing_temp) * lag_factor(
            self.dt, self.bearing_tau_s
        )
        if self.state == MachineState.RUNNING:
            made = self.parts_per_hour / 3600.0 * self.dt * self.speed_fraction
            scrapped = made * min(0.5, self.scrap_rate * (1.0 + 4.0 * self.wear))
            self.parts += made - scrapped
            self.scrap += scrapped
            self.wear += WEAR_PER_RUNNING_H * self.load * self.dt / 3600.0
        self._advance_extra()
        self._readings = self._measure()

    def force_state(self, state: MachineState, hold_s: float) -> None:
        """Hold `state` for `hold_s` seconds of simulated time, then resume the normal schedule
        (a hook for tests and the scenario engine)."""
        self.state = state
        self._state_left_s = hold_s

    def reset_counters(self) -> None:
        """A PLC restart without retained memory: the part counters start again from 0."""
        self.parts = 0.0
        self.scrap = 0.0
        self._readings = self._measure()

    # --- the shared physics ---------------------------------------------------------------

    def _advance_state(self) -> None:
        self._state_left_s -= self.dt
        if self._state_left_s > 0:
            return
        if self.state == MachineState.RUNNING:
            # Most stops are planned (idle); now and then the machine trips into a fault.
            fault_share = self.mean_running_s / MEAN_FAULT_S
            if self.rng.random() < fault_share:
                self.state = MachineState.FAULT
                self._state_left_s = self.rng.expovariate(1.0 / MEAN_FAULT_REPAIR_S)
            else:
                self.state = MachineState.IDLE
                self._state_left_s = self.rng.expovariate(1.0 / self.mean_idle_s)
        else:
            self.state = MachineState.RUNNING
            self._state_left_s = self.rng.expovariate(1.0 / self.mean_running_s)

    def _trend(self) -> float:
        return TREND_AMPLITUDE * math.sin(
            2.0 * math.pi * self.t_s / self._trend_period_s + self._trend_phase
        )

    def _target_load(self) -> float:
        if self.state == MachineState.RUNNING:
            target = self.base_load + self._trend() + self._load_noise.value
        elif self.state == MachineState.IDLE:
            target = self.idle_load + 0.3 * self._load_noise.value
        else:  # stopped or fault: the drive is off
            target = 0.0
        return min(1.1, max(0.0, target))

    def _target_speed(self) -> float:
        if self.state == MachineState.RUNNING:
            return 1.0
        if self.state == MachineState.IDLE:
            return self.idle_speed_fraction
        return 0.0

    def _bearing_equilibrium(self) -> float:
        # Friction heat grows with load and speed; the housing sheds it to the ambient air.
        return self.ambient + self.temp_rise_full_load * self.load * (
            0.5 + 0.5 * self.speed_fraction
        )

    def _measure(self) -> dict[str, float]:
        gauss = self.rng.gauss
        turning = self.speed_fraction > 0.005
        speed = self.nominal_speed * self.speed_fraction * (1.0 + gauss(0.0, 0.002))
        current = self.no_load_current + (self.full_load_current - self.no_load_current) * self.load
        # Imbalance excites the running speed (grows with speed squared); wear adds broadband
        # vibration under load.
        vibration = (
            self.vibration_base * self.speed_fraction * (1.0 + self.imbalance * self.speed_fraction)
            + self.vibration_per_load * self.load * (1.0 + self.wear)
            + self._vibration_noise.value
            + gauss(0.0, 0.03)
        )
        readings = {
            "state": float(self.state),
            "running": 1.0 if self.state == MachineState.RUNNING else 0.0,
            "speed": max(0.0, speed) if turning else 0.0,
            "motor_current": max(
                0.0, (current if turning else 0.0) + gauss(0.0, 0.004 * self.full_load_current)
            ),
            "bearing_temp": self.bearing_temp + gauss(0.0, 0.05),
            "vibration_rms": max(0.02, vibration),
        }
        if self.parts_per_hour > 0:
            readings["good_parts"] = float(math.floor(self.parts))
            readings["scrap_parts"] = float(math.floor(self.scrap))
        readings.update(self._measure_extra())
        readings["alarm_word"] = float(self.alarm_word(readings))
        return readings

    # --- hooks for the classes ------------------------------------------------------------

    def _init_extra(self) -> None:
        """Set up class-specific state (called once, before the first measurement)."""

    def _advance_extra(self) -> None:
        """Advance class-specific state by one tick (after the shared physics)."""

    def _measure_extra(self) -> dict[str, float]:
        """Readings of `extra_signals`."""
        return {}
