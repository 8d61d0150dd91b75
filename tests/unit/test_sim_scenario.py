"""The scenario engine without servers: each kind of event shows up in the served signals at its
scripted simulated time, and its ground truth is written when it begins."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from plantmesh.config import ConfigError
from plantmesh.modbus_profile import Table, load_profile
from simulators.engine import SimulationEngine, TickFrame
from simulators.network import NetworkConfig, Protocol, load_network
from simulators.records import ProductionRecord
from simulators.scenario import ScenarioConfig, load_scenario
from simulators.signals import AlarmBit, MachineState

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo"
PROFILES = DEMO / "profiles"
START = datetime(2026, 3, 1, 6, 0, 0, tzinfo=UTC)


def network() -> NetworkConfig:
    return NetworkConfig.model_validate(
        {
            "seed": 3,
            "plants": [
                {
                    "id": "plant-x",
                    "opcua": {"port": 0},
                    "modbus": {"port": 0},
                    "machines": [
                        {"id": "press-01", "area": "stamping", "line": "line1",
                         "class": "hydraulic_press", "protocol": "opcua"},
                        {"id": "mill-01", "area": "machining", "line": "line2",
                         "class": "cnc_mill", "protocol": "opcua"},
                        {"id": "pump-01", "area": "utilities", "line": "line1",
                         "class": "centrifugal_pump", "protocol": "modbus", "unit_id": 1,
                         "profile": load_profile(PROFILES / "centrifugal_pump.yaml")},
                        {"id": "conveyor-01", "area": "stamping", "line": "line1",
                         "class": "conveyor", "protocol": "modbus", "unit_id": 2,
                         "profile": load_profile(PROFILES / "conveyor.yaml")},
                    ],
                }
            ],
        }
    )  # fmt: skip


def scenario(*events: dict[str, Any]) -> ScenarioConfig:
    return ScenarioConfig.model_validate({"events": [{"plant": "plant-x", **e} for e in events]})


class Run:
    """Steps an engine and keeps, per tick, the full served state rebuilt from the changes."""

    def __init__(self, *events: dict[str, Any], ticks: int) -> None:
        self.engine = SimulationEngine(network(), start=START, scenario=scenario(*events))
        self.frames: list[TickFrame] = []
        self.states: list[dict[tuple[str, str], ProductionRecord]] = []
        state: dict[tuple[str, str], ProductionRecord] = {}
        for _ in range(ticks):
            frame = self.engine.next_tick()
            for record in frame.records():
                state[(record.machine, record.signal)] = record
            self.frames.append(frame)
            self.states.append(dict(state))

    def series(self, machine: str, signal: str) -> list[Any]:
        return [s[(machine, signal)].value for s in self.states]

    def record(self, tick: int, machine: str, signal: str) -> ProductionRecord:
        return self.states[tick][(machine, signal)]


def baseline(ticks: int) -> Run:
    return Run(ticks=ticks)


def test_step_shifts_the_signal_inside_its_window_only() -> None:
    event = {"kind": "step", "machine": "press-01", "signal": "pressure", "start_s": 10,
             "duration_s": 5, "delta": 40.0}  # fmt: skip
    bent, plain = (
        Run(event, ticks=25).series("press-01", "pressure"),
        baseline(25).series("press-01", "pressure"),
    )
    for tick, (b, p) in enumerate(zip(bent, plain, strict=True)):
        expected = p + 40.0 if 10 <= tick < 15 else p
        assert b == pytest.approx(expected), tick


def test_drift_grows_at_its_rate_and_ends_with_its_window() -> None:
    event = {"kind": "drift", "machine": "press-01", "signal": "bearing_temp", "start_s": 5,
             "duration_s": 60, "rate_per_s": 0.5}  # fmt: skip
    bent, plain = (
        Run(event, ticks=80).series("press-01", "bearing_temp"),
        baseline(80).series("press-01", "bearing_temp"),
    )
    offsets = [b - p for b, p in zip(bent, plain, strict=True)]
    assert offsets[:5] == [0.0] * 5
    assert offsets[5 + 40] == pytest.approx(20.0)
    assert offsets[64] == pytest.approx(29.5)
    assert offsets[65:] == [0.0] * 15


def test_oscillation_grows_and_sets_the_vibration_alarm_bit() -> None:
    event = {"kind": "oscillation", "machine": "mill-01", "signal": "vibration_rms",
             "start_s": 20, "duration_s": 200, "period_s": 10, "amplitude": 8.0,
             "grow_s": 100}  # fmt: skip
    run = Run(event, ticks=240)
    bent = run.series("mill-01", "vibration_rms")
    plain = baseline(240).series("mill-01", "vibration_rms")
    swing = [b - p for b, p in zip(bent, plain, strict=True)]

    def amplitude(first: int) -> float:
        return max(abs(s) for s in swing[first : first + 20])

    assert amplitude(0) == 0.0
    assert 0.5 < amplitude(30) < amplitude(60) < amplitude(100) <= 8.0 + 1e-9
    assert amplitude(220) == 0.0
    alarms = [int(run.record(t, "mill-01", "alarm_word").value) for t in range(240)]
    vibration_bit = 1 << AlarmBit.VIBRATION_HIGH
    assert not any(a & vibration_bit for a in alarms[:40])
    assert any(a & vibration_bit for a in alarms[100:220])
    # Vibration RMS is never served below the instrument's range.
    assert min(bent) >= 0.0


def test_spikes_come_and_go_and_repeat_for_a_seed() -> None:
    event = {"kind": "spikes", "machine": "press-01", "signal": "motor_current",
             "start_s": 10, "duration_s": 300, "magnitude": 50.0, "every_s": 20,
             "width_s": 2}  # fmt: skip
    bent = Run(event, ticks=330).series("press-01", "motor_current")
    plain = baseline(330).series("press-01", "motor_current")
    spiking = [t for t, (b, p) in enumerate(zip(bent, plain, strict=True)) if b - p > 25]
    assert spiking, "no spike at all"
    assert all(10 <= t < 310 for t in spiking)
    assert 5 <= len(spiking) // 2 <= 30  # about 15 spikes of 2 ticks
    assert all(
        abs(b - p - 50.0) < 1e-9
        for t, (b, p) in enumerate(zip(bent, plain, strict=True))
        if t in spiking
    )
    again = Run(event, ticks=330).series("press-01", "motor_current")
    assert again == bent


def test_flatline_freezes_the_value_then_lets_go() -> None:
    event = {"kind": "flatline", "machine": "press-01", "signal": "speed", "start_s": 10,
             "duration_s": 20}  # fmt: skip
    run = Run(event, ticks=40)
    speed = run.series("press-01", "speed")
    assert len(set(speed[10:30])) == 1
    assert speed[30] != speed[29]
    # A frozen value is not re-served: no record for it inside the window.
    assert not any(r.signal == "speed" and r.machine == "press-01"
                   for f in run.frames[11:30] for r in f.records())  # fmt: skip


def test_bad_quality_over_opcua_is_a_status_and_a_frozen_value() -> None:
    events = (
        {"kind": "bad_quality", "machine": "press-01", "signal": "bearing_temp",
         "start_s": 5, "duration_s": 5},
        {"kind": "bad_quality", "machine": "press-01", "signal": "pressure",
         "start_s": 5, "duration_s": 5, "quality": "uncertain"},
    )  # fmt: skip
    run = Run(*events, ticks=15)
    qualities = [run.record(t, "press-01", "bearing_temp").quality for t in range(15)]
    assert qualities == ["good"] * 5 + ["bad"] * 5 + ["good"] * 5
    assert len({run.record(t, "press-01", "bearing_temp").value for t in range(5, 10)}) == 1
    pressure = [run.record(t, "press-01", "pressure") for t in range(15)]
    assert [p.quality for p in pressure[4:11]] == ["good"] + ["uncertain"] * 5 + ["good"]
    assert len({p.value for p in pressure[5:10]}) == 5  # uncertain values keep moving
    alarms = int(run.record(7, "press-01", "alarm_word").value)
    assert alarms & (1 << AlarmBit.SENSOR_FAILURE)
    assert run.record(7, "press-01", "bearing_temp").to_json()["quality"] == "bad"
    assert "quality" not in run.record(12, "press-01", "bearing_temp").to_json()


def test_bad_quality_over_modbus_fails_the_signals_registers() -> None:
    event = {"kind": "bad_quality", "machine": "pump-01", "signal": "bearing_temp",
             "start_s": 3, "duration_s": 4}  # fmt: skip
    engine = SimulationEngine(network(), start=START, scenario=scenario(event))
    pump = next(m for m in engine.machines if m.id == "pump-01")
    failed = []
    for _ in range(10):
        engine.next_tick()
        failed.append(list(pump.failed_registers))
    assert failed[:3] == [[]] * 3
    assert failed[3:7] == [[(Table.INPUT, 0, 1)]] * 4  # input register 0, int16
    assert failed[7:] == [[]] * 3


def test_state_flapping_cycles_the_state_and_the_physics_follow() -> None:
    event = {"kind": "state_flapping", "machine": "conveyor-01", "start_s": 10,
             "duration_s": 40, "period_s": 5, "states": ["running", "fault"]}  # fmt: skip
    run = Run(event, ticks=50)
    states = [int(s) for s in run.series("conveyor-01", "state")]
    expected = [MachineState.RUNNING if (t - 10) // 5 % 2 == 0 else MachineState.FAULT
                for t in range(10, 50)]  # fmt: skip
    assert states[10:50] == expected
    running = run.series("conveyor-01", "running")
    assert running[10:50] == [s == MachineState.RUNNING for s in expected]
    alarms = [int(a) for a in run.series("conveyor-01", "alarm_word")]
    assert alarms[16] & (1 << AlarmBit.FAULT)


def test_plc_restart_takes_the_server_away_and_resets_the_counters() -> None:
    event = {"kind": "plc_restart", "protocol": "modbus", "start_s": 20, "duration_s": 10}
    run = Run(event, ticks=40)
    key = ("plant-x", Protocol.MODBUS)
    down = [t for t, f in enumerate(run.frames) if key in f.down]
    assert down == list(range(20, 30))
    assert not any(("plant-x", Protocol.OPCUA) in f.down for f in run.frames)
    # Nothing is served (nor recorded) from the Modbus machines while the PLC is down...
    assert not any(r.protocol == "modbus" for f in run.frames[20:30] for r in f.records())
    # ...and it comes back with every value, the part counters started again from 0.
    back = {r.signal: r for r in run.frames[30].records() if r.machine == "conveyor-01"}
    assert set(back) == {r.signal for r in load_profile(PROFILES / "conveyor.yaml").registers}
    before = run.record(19, "conveyor-01", "good_parts").value
    assert before > 1000
    assert back["good_parts"].value < 10


def test_comms_loss_refuse_and_silent() -> None:
    events = (
        {"kind": "comms_loss", "protocol": "opcua", "start_s": 5, "duration_s": 5},
        {"kind": "comms_loss", "protocol": "modbus", "start_s": 8, "duration_s": 4,
         "mode": "silent"},
    )  # fmt: skip
    run = Run(*events, ticks=15)
    opcua, modbus = ("plant-x", Protocol.OPCUA), ("plant-x", Protocol.MODBUS)
    assert [t for t, f in enumerate(run.frames) if opcua in f.down] == [5, 6, 7, 8, 9]
    assert [t for t, f in enumerate(run.frames) if modbus in f.silent] == [8, 9, 10, 11]
    assert not any(modbus in f.down for f in run.frames)
    # A communications loss does not reset counters: the press keeps counting.
    parts = run.series("press-01", "good_parts")
    assert parts[14] >= parts[4]


def test_clock_skew_shifts_source_timestamps_of_its_server_only() -> None:
    event = {"kind": "clock_skew", "protocol": "opcua", "start_s": 4, "duration_s": 3,
             "offset_s": -90}  # fmt: skip
    run = Run(event, ticks=10)
    for tick, frame in enumerate(run.frames):
        for record in frame.records():
            skewed = record.protocol == "opcua" and 4 <= tick < 7
            offset = timedelta(seconds=-90 if skewed else 0)
            assert record.source_ts == START + timedelta(seconds=tick) + offset


def test_truth_is_announced_when_each_event_begins() -> None:
    events = (
        {"kind": "excursion", "machine": "press-01", "signal": "bearing_temp", "start_s": 3,
         "duration_s": 4, "value": 96.0},
        {"kind": "plc_restart", "protocol": "modbus", "start_s": 6, "duration_s": 2,
         "severity": "critical"},
        {"kind": "step", "machine": "mill-01", "signal": "torque", "start_s": 50, "delta": 1},
    )  # fmt: skip
    run = Run(*events, ticks=10)
    announced = {t: [r.to_json() for r in f.truth] for t, f in enumerate(run.frames) if f.truth}
    assert set(announced) == {3, 6}
    (bearing,) = announced[3]
    assert bearing == {
        "event": 0, "kind": "excursion", "plant": "plant-x", "area": "stamping",
        "line": "line1", "machine": "press-01", "signal": "bearing_temp", "protocol": "opcua",
        "start": "2026-03-01T06:00:03Z", "end": "2026-03-01T06:00:07Z", "start_s": 3.0,
        "end_s": 7.0, "severity": "high", "should_alert": True, "speed": 1.0,
    }  # fmt: skip
    restart = announced[6]
    assert {(r["machine"], r["signal"], r["severity"]) for r in restart} == {
        ("pump-01", None, "critical"),
        ("conveyor-01", None, "critical"),
    }


def test_demo_scenarios_fit_the_demo_network() -> None:
    demo = load_network(DEMO / "network.yaml")
    files = sorted((DEMO / "scenarios").glob("*.yaml"))
    assert {f.stem for f in files} >= {"demo", "cross-plant-instability", "fault-tour"}
    kinds = set()
    for file in files:
        kinds |= {e.kind for e in load_scenario(file, demo).events}
    assert kinds == {
        "excursion", "step", "drift", "oscillation", "spikes", "flatline", "bad_quality",
        "state_flapping", "plc_restart", "comms_loss", "clock_skew",
    }  # fmt: skip


def test_cross_plant_instability_hits_one_class_in_two_plants_within_minutes() -> None:
    demo = load_network(DEMO / "network.yaml")
    instability = load_scenario(DEMO / "scenarios" / "cross-plant-instability.yaml", demo)
    oscillations = [e for e in instability.events if e.kind == "oscillation"]
    plants = {e.plant for e in oscillations}
    assert len(plants) == 2
    classes = set()
    for event in oscillations:
        machine = demo.plant(event.plant).machine(event.machine)  # type: ignore[union-attr]
        assert machine is not None
        classes.add((machine.machine_class, event.signal))  # type: ignore[union-attr]
    assert classes == {("cnc_mill", "vibration_rms")}
    starts = sorted(e.start_s for e in oscillations)
    assert 0 < starts[1] - starts[0] <= 600


def bad_scenario(tmp_path: Path, text: str) -> str:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_scenario(path, network())
    message = str(caught.value)
    assert str(path) in message
    return message


def test_bad_scenarios_name_the_key_and_the_line(tmp_path: Path) -> None:
    text = bad_scenario(
        tmp_path,
        yaml.safe_dump(
            {
                "events": [
                    {"kind": "step", "plant": "plant-x", "machine": "press-01",
                     "signal": "bearing_temp", "start_s": 1, "delta": 2},
                    {"kind": "step", "plant": "plant-q", "machine": "press-01",
                     "signal": "bearing_temp", "start_s": 1, "delta": 2},
                    {"kind": "step", "plant": "plant-x", "machine": "press-09",
                     "signal": "bearing_temp", "start_s": 1, "delta": 2},
                    {"kind": "drift", "plant": "plant-x", "machine": "pump-01",
                     "signal": "good_parts", "start_s": 1, "rate_per_s": 2},
                ]
            },
            sort_keys=False,
        ),
    )  # fmt: skip
    assert "events[1].plant: no such plant (plants: plant-x) (got 'plant-q') (line 9)" in text
    assert "events[2].machine: no such machine in plant-x (got 'press-09') (line 16)" in text
    assert "events[3].signal: pump-01 serves no such signal" in text
    assert "(line 23)" in text
    assert "events[0]" not in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("events:\n  - {kind: drift, plant: plant-x, machine: press-01, signal: speed,\n"
         "     start_s: 1}\n", "events[0].rate_per_s: required key is missing (line 2)"),
        ("events:\n  - kind: shake\n    plant: plant-x\n", "events[0]: Input tag 'shake'"),
        ("events:\n  - {kind: step, plant: plant-x, machine: press-01, signal: speed,\n"
         "     start_s: -3, delta: 1}\n", "events[0].start_s: Input should be greater than"),
        ("events:\n  - {kind: comms_loss, plant: plant-x, start_s: 1, duration_s: 2,\n"
         "     mode: silent}\n", "mode silent needs protocol: modbus"),
        ("events:\n  - {kind: step, plant: plant-x, machine: press-01, signal: speed,\n"
         "     start_s: 1, delta: 1, colour: red}\n", "events[0].colour: unknown key"),
        ("name: x\nspeed: 3\n", "speed: unknown key (check the spelling"),
    ],
)  # fmt: skip
def test_bad_scenario_keys(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in bad_scenario(tmp_path, text).replace(" (line 2) (check", " (check")


def test_spikes_are_not_all_at_the_start() -> None:
    event = {"kind": "spikes", "machine": "press-01", "signal": "pressure", "start_s": 0,
             "duration_s": 1000, "magnitude": 500.0, "every_s": 50}  # fmt: skip
    run = Run(event, ticks=1000)
    hits = [t for t, v in enumerate(run.series("press-01", "pressure")) if v >= 240]
    assert statistics.mean(hits) > 300
