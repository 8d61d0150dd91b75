"""Accelerated time: the scenario runs `speed` times faster than the wall clock while source
timestamps and ground truth stay wall-clock, so Modbus poll times, OPC UA source timestamps and
truth share one time base and the scorer's latencies are real ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from plantmesh.modbus_profile import load_profile
from simulators.engine import SimulationEngine, TickFrame
from simulators.network import NetworkConfig
from simulators.runtime import Simulation
from simulators.scenario import ScenarioConfig
from simulators.truth import TruthRecord

PROFILES = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "profiles"
T0 = datetime(2026, 4, 1, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def network() -> NetworkConfig:
    return NetworkConfig.model_validate(
        {
            "seed": 5,
            "tick_s": 1.0,
            "plants": [
                {
                    "id": "plant-x",
                    "opcua": {"port": 0},
                    "modbus": {"port": 0},
                    "machines": [
                        {"id": "press-01", "area": "stamping", "line": "line1",
                         "class": "hydraulic_press", "protocol": "opcua"},
                        {"id": "pump-01", "area": "utilities", "line": "line1",
                         "class": "centrifugal_pump", "protocol": "modbus", "unit_id": 1,
                         "profile": load_profile(PROFILES / "centrifugal_pump.yaml")},
                    ],
                }
            ],
        }
    )  # fmt: skip


def scenario(*events: dict[str, Any]) -> ScenarioConfig:
    return ScenarioConfig.model_validate({"events": [{"plant": "plant-x", **e} for e in events]})


STEP_AT_50 = {"kind": "step", "machine": "press-01", "signal": "pressure", "start_s": 50,
              "duration_s": 100, "delta": 40.0}  # fmt: skip
EXCURSION_AT_50 = {"kind": "excursion", "machine": "pump-01", "signal": "bearing_temp",
                   "start_s": 50, "duration_s": 20, "value": 95.0}  # fmt: skip


def run_until_truth(
    engine: SimulationEngine, limit: int = 200
) -> tuple[TickFrame, list[TickFrame]]:
    frames = []
    for _ in range(limit):
        frames.append(engine.next_tick())
        if frames[-1].truth:
            return frames[-1], frames
    raise AssertionError(f"no truth within {limit} ticks")


def test_event_at_scenario_50_s_is_true_10_wall_seconds_after_start_at_speed_5() -> None:
    engine = SimulationEngine(network(), scenario=scenario(STEP_AT_50), speed=5, clock=FakeClock())
    frame, _ = run_until_truth(engine)
    (truth,) = frame.truth
    assert frame.tick == 50  # the scenario timeline: tick_s of physics per tick
    assert engine.start == T0  # the clock's, at tick 0
    assert truth.start == T0 + timedelta(seconds=10)
    assert truth.end == T0 + timedelta(seconds=30)  # 100 s of scenario last 20 s of wall time
    assert (truth.start_s, truth.end_s, truth.speed) == (10.0, 30.0, 5.0)
    assert TruthRecord.from_json(truth.to_json()) == truth


def test_tick_timestamps_advance_tick_s_over_speed() -> None:
    engine = SimulationEngine(network(), start=T0, speed=4)
    stamps = [engine.next_tick().timestamp for _ in range(9)]
    assert stamps == [T0 + timedelta(seconds=0.25 * n) for n in range(9)]


def test_physics_run_on_the_scenario_timeline_whatever_the_speed() -> None:
    def values(speed: float) -> list[list[Any]]:
        engine = SimulationEngine(network(), start=T0, speed=speed)
        return [[r.value for r in engine.next_tick().records()] for _ in range(30)]

    assert values(1) == values(7)


@pytest.mark.parametrize("speed", [2.0, 5.0, 12.5])
def test_opcua_modbus_and_truth_share_the_wall_clock_time_base(speed: float) -> None:
    engine = SimulationEngine(
        network(), scenario=scenario(STEP_AT_50, EXCURSION_AT_50), speed=speed, clock=FakeClock()
    )
    frame, frames = run_until_truth(engine)
    truth = {t.machine: t for t in frame.truth}
    assert set(truth) == {"press-01", "pump-01"}
    wall = T0 + timedelta(seconds=50 / speed)
    before = {(r.machine, r.signal): r.value for f in frames[:-1] for r in f.records()}
    for record in frame.records():
        if (record.machine, record.signal) in {
            ("press-01", "pressure"),
            ("pump-01", "bearing_temp"),
        }:
            # the value the event bent carries the instant its truth begins
            assert record.value != before[(record.machine, record.signal)]
            assert record.source_ts == truth[record.machine].start == wall
    assert {r.protocol for r in frame.records()} == {"opcua", "modbus"}
    assert {r.source_ts for r in frame.records()} == {wall}


def test_clock_skew_offsets_are_wall_seconds_at_any_speed() -> None:
    skew = {"kind": "clock_skew", "protocol": "opcua", "start_s": 10, "offset_s": -30}
    engine = SimulationEngine(network(), scenario=scenario(skew), start=T0, speed=5)
    frame, _ = run_until_truth(engine)
    opcua = {r.source_ts for r in frame.records() if r.protocol == "opcua"}
    assert opcua == {T0 + timedelta(seconds=2 - 30)}
    assert {t.start for t in frame.truth} == {T0 + timedelta(seconds=2)}  # truth: never skewed


def test_resync_moves_later_instants_to_the_clock_and_never_back() -> None:
    clock = FakeClock()
    engine = SimulationEngine(network(), scenario=scenario(STEP_AT_50), speed=5, clock=clock)
    for _ in range(11):
        engine.next_tick()  # tick 10: 2 s of wall time
    assert engine.resync() == timedelta(0)  # the fake clock stands still: ahead of it
    clock.now = T0 + timedelta(seconds=32)  # the host lost 30 s
    assert engine.resync() == timedelta(seconds=30)
    assert engine.next_tick().timestamp == T0 + timedelta(seconds=32.2)
    frame, _ = run_until_truth(engine)
    (truth,) = frame.truth
    assert truth.start == T0 + timedelta(seconds=40)  # scenario 50 s: 10 s + the 30 s lost
    assert (truth.start_s, truth.end_s) == (40.0, 60.0)  # still from tick 0
    assert truth.end == T0 + timedelta(seconds=60)


def test_resync_keeps_a_given_start_and_adds_real_elapsed_time() -> None:
    clock = FakeClock()
    engine = SimulationEngine(network(), start=T0 - timedelta(days=3), speed=5, clock=clock)
    engine.next_tick()
    clock.now = T0 + timedelta(seconds=4)
    assert engine.resync() == timedelta(seconds=4)
    assert engine.next_tick().timestamp == T0 - timedelta(days=3) + timedelta(seconds=4.2)


def test_simulation_passes_speed_and_clock_to_its_engine() -> None:
    clock = FakeClock()
    sim = Simulation(network(), speed=5, clock=clock, scenario=scenario(STEP_AT_50))
    assert sim.interval_s == 0.2
    assert (sim.engine.speed, sim.engine.clock) == (5, clock)


async def test_simulation_steps_stamp_truth_and_records_on_the_wall_clock() -> None:
    sim = Simulation(network(), speed=5, clock=FakeClock(), scenario=scenario(STEP_AT_50))
    while not sim.truth:
        await sim.step()
    assert sim.tick == 50
    assert [t.start for t in sim.truth] == [T0 + timedelta(seconds=10)]
    assert {r.source_ts for r in sim.records if r.tick == 50} == {T0 + timedelta(seconds=10)}


def test_engine_refuses_a_speed_not_above_zero() -> None:
    with pytest.raises(ValueError, match="speed"):
        SimulationEngine(network(), speed=0)
