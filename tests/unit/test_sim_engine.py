"""The simulation engine without servers: ticks, timestamps, events, served values, the log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from plantmesh.modbus_profile import decode_registers, encode_value, load_profile
from simulators.engine import SimulationEngine
from simulators.network import NetworkConfig
from simulators.records import ProductionRecord, RecordWriter, read_records
from simulators.runtime import Simulation

PROFILES = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "profiles"
START = datetime(2026, 3, 1, 6, 0, 0, tzinfo=UTC)


def network(events: list[dict[str, Any]] | None = None, tick_s: float = 1.0) -> NetworkConfig:
    return NetworkConfig.model_validate(
        {
            "seed": 3,
            "tick_s": tick_s,
            "plants": [
                {
                    "id": "plant-x",
                    "opcua": {"port": 0},
                    "modbus": {"port": 0},
                    "machines": [
                        {
                            "id": "press-01",
                            "area": "stamping",
                            "line": "line1",
                            "class": "hydraulic_press",
                            "protocol": "opcua",
                        },
                        {
                            "id": "pump-01",
                            "area": "utilities",
                            "line": "line1",
                            "class": "centrifugal_pump",
                            "protocol": "modbus",
                            "unit_id": 1,
                            "profile": load_profile(PROFILES / "centrifugal_pump.yaml"),
                        },
                    ],
                }
            ],
            "events": events or [],
        }
    )


EXCURSION = {
    "plant": "plant-x",
    "machine": "press-01",
    "signal": "bearing_temp",
    "kind": "excursion",
    "start_s": 5,
    "duration_s": 3,
    "value": 96.0,
}


def served_series(engine: SimulationEngine, ticks: int) -> list[dict[tuple[str, str], Any]]:
    """The full served state after each tick, rebuilt from the changes alone."""
    state: dict[tuple[str, str], Any] = {}
    series = []
    for _ in range(ticks):
        for record in engine.next_tick().records():
            state[(record.machine, record.signal)] = record.value
        series.append(dict(state))
    return series


def test_tick_zero_serves_every_signal_at_the_start_instant() -> None:
    engine = SimulationEngine(network(), start=START)
    frame = engine.next_tick()
    records = frame.records()
    press = {r.signal for r in records if r.machine == "press-01"}
    pump = {r.signal for r in records if r.machine == "pump-01"}
    assert frame.tick == 0
    assert len(records) == len(press) + len(pump)
    assert "pressure" in press
    assert "good_parts" in press
    assert pump == {r.signal for r in load_profile(PROFILES / "centrifugal_pump.yaml").registers}
    assert {r.source_ts for r in records} == {START}
    assert {(r.machine, r.protocol) for r in records} == {
        ("press-01", "opcua"),
        ("pump-01", "modbus"),
    }
    bearing = next(r for r in records if r.signal == "bearing_temp")
    assert (bearing.unit, bearing.area, bearing.line) == ("degC", "stamping", "line1")


def test_timestamps_are_start_plus_tick_times_tick_length() -> None:
    engine = SimulationEngine(network(tick_s=0.1), start=START)
    stamps = [engine.next_tick().timestamp for _ in range(31)]
    assert stamps[30] == START + timedelta(seconds=3)
    assert stamps[7] == START + timedelta(milliseconds=700)


def test_same_seed_and_start_reproduce_the_log_exactly() -> None:
    def log(seed: int) -> list[dict[str, Any]]:
        engine = SimulationEngine(network([EXCURSION]), seed=seed, start=START)
        return [r.to_json() for _ in range(40) for r in engine.next_tick().records()]

    assert log(5) == log(5)
    assert log(5) != log(6)


def test_only_changed_values_are_recorded() -> None:
    engine = SimulationEngine(network(), start=START)
    engine.next_tick()
    for _ in range(30):
        before = {m.id: dict(m.served) for m in engine.machines}
        changed = {(r.machine, r.signal) for r in engine.next_tick().records()}
        for machine in engine.machines:
            for signal, value in machine.served.items():
                assert ((machine.id, signal) in changed) == (value != before[machine.id][signal])
    # Analog OPC UA values change every tick; a state that holds is not re-recorded.
    assert ("press-01", "bearing_temp") in changed
    assert ("press-01", "state") not in changed


def test_excursion_overrides_its_signal_in_its_window_only() -> None:
    plain = served_series(SimulationEngine(network(), start=START), 15)
    bent = served_series(SimulationEngine(network([EXCURSION]), start=START), 15)
    key = ("press-01", "bearing_temp")
    alarms = ("press-01", "alarm_word")
    for tick, (normal, event) in enumerate(zip(plain, bent, strict=True)):
        in_window = 5 <= tick < 8  # start_s 5, duration_s 3, tick_s 1
        if in_window:
            assert abs(event[key] - 96.0) < 1.0, tick
            assert normal[key] < 80
            assert int(event[alarms]) & 1  # the PLC latches "bearing hot"
        else:
            assert event[key] == normal[key], tick
            assert event[alarms] == normal[alarms], tick
        others = {k: v for k, v in event.items() if k not in (key, alarms)}
        assert others == {k: v for k, v in normal.items() if k not in (key, alarms)}, tick


def test_excursion_window_is_in_simulated_seconds() -> None:
    engine = SimulationEngine(network([EXCURSION], tick_s=0.5), start=START)
    hot = [
        frame.tick
        for frame in (engine.next_tick() for _ in range(30))
        for r in frame.records()
        if r.signal == "bearing_temp" and r.machine == "press-01" and r.value > 90
    ]
    assert hot == list(range(10, 16))  # 5.0 s to 7.5 s at 0.5 s a tick


def test_modbus_values_are_what_a_client_decodes() -> None:
    engine = SimulationEngine(network(), start=START)
    profile = load_profile(PROFILES / "centrifugal_pump.yaml")
    pump = next(m for m in engine.machines if m.id == "pump-01")
    for _ in range(5):
        records = {
            r.signal: r.value for r in engine.next_tick().records() if r.machine == "pump-01"
        }
        raw = pump.model.values()
        for spec in profile.registers:
            if spec.type.value == "bool":
                assert pump.served[spec.signal] is (raw[spec.signal] >= 0.5)
            else:
                expected = decode_registers(spec, encode_value(spec, raw[spec.signal]))
                assert pump.served[spec.signal] == expected
            if spec.signal in records:
                assert records[spec.signal] == pump.served[spec.signal]
    # A scaled int16 loses precision on purpose: the record holds the served value, not the model's.
    assert pump.served["bearing_temp"] == round(pump.served["bearing_temp"], 1)


async def test_simulation_steps_and_records_without_servers() -> None:
    seen: list[ProductionRecord] = []
    batches: list[int] = []
    sim = Simulation(
        network(), start=START, on_record=seen.append, on_records=lambda b: batches.append(len(b))
    )
    first = await sim.step()
    second = await sim.step()
    assert sim.tick == 1
    assert {r.tick for r in first} == {0}
    assert {r.tick for r in second} == {1}
    assert sim.records == seen == first + second
    assert batches == [len(first), len(second)]
    assert sim.timestamp(1) == START + timedelta(seconds=1)


def test_simulation_refuses_profiles_that_are_still_paths() -> None:
    data = network().model_dump(by_alias=True)
    data["plants"][0]["machines"][1]["profile"] = "profiles/centrifugal_pump.yaml"
    with pytest.raises(ValueError, match="plant-x/pump-01"):
        Simulation(NetworkConfig.model_validate(data))


def test_simulation_start_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone"):
        Simulation(network(), start=datetime(2026, 1, 1))


def test_record_writer_appends_json_lines_that_read_back_exactly(tmp_path: Path) -> None:
    engine = SimulationEngine(network(), start=START)
    first, second = engine.next_tick().records(), engine.next_tick().records()
    path = tmp_path / "log" / "served.jsonl"
    for batch in (first, second):  # two writers: the second appends
        writer = RecordWriter(path)
        writer.write(batch)
        writer.close()
    assert read_records(path) == first + second
    line = path.read_text().splitlines()[0]
    assert '"source_ts": "2026-03-01T06:00:00Z"' in line
