"""Machine models: deterministic per seed, coherent physics, units everywhere."""

from __future__ import annotations

import itertools
import random

import pytest

from simulators.machines import MACHINE_CLASSES, create_machine
from simulators.machines.base import MachineModel
from simulators.signals import AlarmBit, MachineState, SignalKind

CLASSES = sorted(MACHINE_CLASSES)


def run(machine: MachineModel, ticks: int) -> list[dict[str, float]]:
    series = [machine.values()]
    for _ in range(ticks):
        machine.advance()
        series.append(machine.values())
    return series


def make(machine_class: str, seed: str = "7", tick_s: float = 1.0) -> MachineModel:
    return create_machine(machine_class, random.Random(seed), tick_s)


@pytest.mark.parametrize("machine_class", CLASSES)
def test_same_seed_same_values_other_seed_other_values(machine_class: str) -> None:
    first = run(make(machine_class, "a"), 300)
    again = run(make(machine_class, "a"), 300)
    other = run(make(machine_class, "b"), 300)
    assert first == again
    assert first != other


@pytest.mark.parametrize("machine_class", CLASSES)
def test_every_signal_has_a_unit_a_range_and_a_value(machine_class: str) -> None:
    model = MACHINE_CLASSES[machine_class]
    specs = model.signals()
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    assert {"state", "speed", "motor_current", "bearing_temp", "vibration_rms"} <= set(names)
    for spec in specs:
        assert spec.unit, spec.name
        assert spec.low < spec.high, spec.name
    values = make(machine_class).values()
    assert set(values) == set(names)
    units = {s.name: s.unit for s in specs}
    assert (units["bearing_temp"], units["vibration_rms"], units["motor_current"]) == (
        "degC",
        "mm/s",
        "A",
    )


@pytest.mark.parametrize("machine_class", CLASSES)
def test_analog_signals_take_a_new_value_every_tick(machine_class: str) -> None:
    analog = [s.name for s in MACHINE_CLASSES[machine_class].signals() if s.kind == "analog"]
    series = run(make(machine_class), 200)
    for before, after in itertools.pairwise(series):
        for name in analog:
            assert before[name] != after[name], name


@pytest.mark.parametrize("machine_class", CLASSES)
def test_counters_never_decrease_and_do_count(machine_class: str) -> None:
    counters = [
        s.name for s in MACHINE_CLASSES[machine_class].signals() if s.kind == SignalKind.COUNTER
    ]
    assert counters, "every class has a production or energy counter"
    series = run(make(machine_class), 3600)
    for name in counters:
        values = [v[name] for v in series]
        assert all(b >= a for a, b in itertools.pairwise(values)), name
        assert values[-1] > values[0], name


@pytest.mark.parametrize("machine_class", CLASSES)
@pytest.mark.parametrize("seed", ["1", "2", "3"])
def test_normal_bearing_temperature_stays_well_below_alarm_levels(
    machine_class: str, seed: str
) -> None:
    series = run(make(machine_class, seed), 7200)
    assert max(v["bearing_temp"] for v in series) < 75.0
    assert min(v["bearing_temp"] for v in series) > 15.0


@pytest.mark.parametrize("machine_class", CLASSES)
def test_states_are_coded_and_running_flag_agrees(machine_class: str) -> None:
    series = run(make(machine_class, "9"), 7200)
    states = {v["state"] for v in series}
    assert states <= {float(s) for s in MachineState}
    assert float(MachineState.RUNNING) in states
    for v in series:
        assert v["running"] == (1.0 if v["state"] == MachineState.RUNNING else 0.0)


def test_bearing_temperature_lags_the_load() -> None:
    press = make("hydraulic_press")
    press.force_state(MachineState.IDLE, hold_s=900)
    idle = run(press, 899)[-1]
    press.force_state(MachineState.RUNNING, hold_s=3600)
    loaded = run(press, 900)
    current_rise = [v["motor_current"] - idle["motor_current"] for v in loaded]
    temp_rise = [v["bearing_temp"] - idle["bearing_temp"] for v in loaded]
    settled_current = sum(current_rise[-100:]) / 100
    settled_temp = sum(temp_rise[-100:]) / 100
    # The motor current follows within seconds...
    assert current_rise[30] > 0.8 * settled_current > 0
    # ...the bearing heats up over minutes: after 30 s it has covered a small part of its rise,
    assert 0 < temp_rise[30] < 0.3 * settled_temp
    # and it keeps climbing long after the load settled.
    assert temp_rise[60] < temp_rise[180] < temp_rise[600]


def test_a_stopped_machine_stands_still_and_cools() -> None:
    pump = make("centrifugal_pump")
    before = pump.values()
    pump.force_state(MachineState.STOPPED, hold_s=600)
    after = run(pump, 300)[-1]
    assert after["state"] == MachineState.STOPPED
    assert after["speed"] == 0.0
    assert after["flow"] < 3.0
    assert after["bearing_temp"] < before["bearing_temp"] - 5


def test_compressor_pressure_saw_tooths_between_cut_in_and_cut_out() -> None:
    compressor = make("air_compressor")
    compressor.force_state(MachineState.RUNNING, hold_s=3600)
    pressures = [v["pressure"] for v in run(compressor, 1800)]
    assert min(pressures) > 6.6
    assert max(pressures) < 8.0
    rises = sum(1 for a, b in itertools.pairwise(pressures) if b > a + 0.01)
    falls = sum(1 for a, b in itertools.pairwise(pressures) if b < a - 0.005)
    assert rises > 100
    assert falls > 100


def test_tick_length_is_simulated_time() -> None:
    """600 ticks of 0.1 s and 60 ticks of 1 s are both a minute: about 30 parts at 1800 an hour."""
    made = []
    for tick_s, ticks in ((0.1, 600), (1.0, 60)):
        conveyor = make("conveyor", tick_s=tick_s)
        conveyor.force_state(MachineState.RUNNING, hold_s=3600)
        series = run(conveyor, ticks)
        made.append(series[-1]["good_parts"] - series[0]["good_parts"])
    assert all(27 <= n <= 31 for n in made), made


@pytest.mark.parametrize("machine_class", CLASSES)
def test_vibration_rises_with_wear_and_imbalance(machine_class: str) -> None:
    def mean_vibration(wear: float, imbalance: float) -> float:
        machine = make(machine_class, "w")
        machine.wear, machine.imbalance = wear, imbalance
        machine.force_state(MachineState.RUNNING, hold_s=3600)
        return sum(v["vibration_rms"] for v in run(machine, 300)[60:]) / 241

    new = mean_vibration(0.0, 0.0)
    assert mean_vibration(1.0, 0.0) > new * 1.15
    assert mean_vibration(0.0, 0.6) > new * 1.1


def test_scrap_grows_with_wear_and_both_counters_count() -> None:
    def counts(wear: float) -> tuple[float, float]:
        mill = make("cnc_mill", "s")
        mill.wear = wear
        mill.force_state(MachineState.RUNNING, hold_s=10 * 3600)
        first, last = mill.values(), run(mill, 4 * 3600)[-1]
        return last["good_parts"] - first["good_parts"], last["scrap_parts"] - first["scrap_parts"]

    good, scrap = counts(0.0)
    assert 120 <= good + scrap <= 170  # 40 parts an hour for 4 hours
    assert 1 <= scrap <= 8
    worn_good, worn_scrap = counts(1.0)
    assert worn_scrap > 2 * scrap
    assert worn_good < good


def test_faults_happen_now_and_then_and_stop_the_drive() -> None:
    faults = 0
    for seed in range(12):
        series = run(make("conveyor", f"f{seed}", tick_s=5.0), 6 * 3600 // 5)
        faulted = [v["state"] == MachineState.FAULT for v in series]
        faults += any(faulted)
        for i, v in enumerate(series):
            if i >= 12 and all(faulted[i - 12 : i + 1]):  # a minute into a fault
                assert v["speed"] == 0.0
                assert v["motor_current"] < 0.5
                assert v["alarm_word"] == 1 << AlarmBit.FAULT
    assert 1 <= faults <= 11


def test_alarm_word_bits() -> None:
    press = MACHINE_CLASSES["hydraulic_press"]
    normal = {"bearing_temp": 60.0, "vibration_rms": 2.0, "motor_current": 70.0, "state": 1.0}
    assert press.alarm_word(normal) == 0
    assert press.alarm_word({**normal, "bearing_temp": 90.0}) == 0b1
    assert press.alarm_word({**normal, "vibration_rms": 9.0}) == 0b10
    assert press.alarm_word({**normal, "motor_current": 100.0}) == 0b100
    assert press.alarm_word({**normal, "state": 3.0}) == 0b1000
    assert press.alarm_word(normal, sensor_failure=True) == 0b10000


def test_restart_resets_the_part_counters() -> None:
    press = make("hydraulic_press")
    run(press, 100)
    assert press.values()["good_parts"] > 1000
    press.reset_counters()
    assert press.values()["good_parts"] == press.values()["scrap_parts"] == 0.0
    assert run(press, 600)[-1]["good_parts"] > 0
