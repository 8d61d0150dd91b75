"""The offline simulation: what the demo's agents would publish, without servers."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from plantmesh.contracts import Quality
from simulators.network import load_network
from simulators.offline import START, offline_run
from simulators.scenario import load_scenario
from tests.support.sim_stream import DEMO

NETWORK = load_network(DEMO / "network.yaml")


def test_modbus_is_polled_every_tick_and_opcua_reports_changes_only() -> None:
    run = offline_run(NETWORK, None, 30, seed=1)
    per_machine: dict[tuple[str, str], int] = defaultdict(int)
    signals: dict[tuple[str, str], set[str]] = defaultdict(set)
    for item in run.batches:
        asset = item.batch.readings[0].asset
        per_machine[(asset.plant, asset.machine)] += 1
        signals[(asset.plant, asset.machine)].update(r.signal for r in item.batch.readings)
    conveyor = ("plant-a", "conveyor-01")  # Modbus
    press = ("plant-a", "press-01")  # OPC UA
    assert per_machine[conveyor] == 30  # every poll, whether values changed or not
    assert "running" in signals[press]  # its initial value, once
    running_reports = sum(
        1
        for item in run.batches
        for r in item.batch.readings
        if (r.asset.plant, r.asset.machine) == press and r.signal == "running"
    )
    assert running_reports == 1  # a state that did not change is not reported again
    assert run.truth == []


def test_sequence_numbers_run_per_gateway_and_times_are_the_ticks() -> None:
    run = offline_run(NETWORK, None, 5, seed=1)
    seqs: dict[str, list[int]] = defaultdict(list)
    for item in run.batches:
        seqs[item.batch.gateway_id].append(item.batch.seq)
        assert item.batch.sent_at - START in {timedelta(seconds=s) for s in range(5)}
    assert set(seqs) == {"gw-plant-a", "gw-plant-b", "gw-plant-c"}
    assert all(s == list(range(len(s))) for s in seqs.values())


def test_scripted_faults_show_as_the_agents_would_see_them() -> None:
    tour = load_scenario(DEMO / "scenarios" / "fault-tour.yaml", NETWORK)
    run = offline_run(NETWORK, tour, 760, seed=1)

    def readings_of(plant: str, machine: str, start: float, end: float) -> list[object]:
        lo, hi = START + timedelta(seconds=start), START + timedelta(seconds=end)
        return [
            r
            for item in run.batches
            for r in item.batch.readings
            if (r.asset.plant, r.asset.machine) == (plant, machine) and lo <= r.source_ts < hi
        ]

    # A Modbus exception answer: the signal published Bad (pump-01 bearing_temp from 420 s).
    bad = [
        r
        for r in readings_of("plant-a", "pump-01", 430, 440)
        if getattr(r, "signal", None) == "bearing_temp"
    ]
    assert bad
    assert all(getattr(r, "quality", None) is Quality.BAD for r in bad)
    # The plant-b Modbus comms loss (720 s for 45 s): nothing from its machines meanwhile.
    assert readings_of("plant-b", "press-01", 725, 760) == []
    assert readings_of("plant-b", "press-01", 700, 719)
    assert {t.kind for t in run.truth} >= {"drift", "step", "comms_loss", "bad_quality"}
    assert all(isinstance(t.start, datetime) for t in run.truth)
