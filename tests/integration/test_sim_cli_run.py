"""`python -m simulators run` and `plantmesh sim run` as separate processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from asyncua import Client

from simulators import read_records

pytestmark = pytest.mark.integration

PROFILES = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "profiles"


def write_network(tmp_path: Path) -> Path:
    path = tmp_path / "network.yaml"
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "conveyor.yaml").write_text((PROFILES / "conveyor.yaml").read_text())
    path.write_text(
        yaml.safe_dump(
            {
                "seed": 4,
                "tick_s": 1.0,
                "plants": [
                    {
                        "id": "plant-q",
                        "opcua": {"port": 0},
                        "modbus": {"port": 0},
                        "machines": [
                            {"id": "mill-01", "area": "machining", "line": "line1",
                             "class": "cnc_mill", "protocol": "opcua"},
                            {"id": "conveyor-01", "area": "machining", "line": "line1",
                             "class": "conveyor", "protocol": "modbus", "unit_id": 3,
                             "profile": "profiles/conveyor.yaml"},
                        ],
                    }
                ],
            }
        )
    )  # fmt: skip
    return path


async def start(*argv: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators", *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PLANTMESH_LOG_FORMAT": "text"},
    )  # fmt: skip


async def wait_for_line(process: asyncio.subprocess.Process, pattern: str) -> re.Match[str]:
    assert process.stderr is not None
    seen = []
    async with asyncio.timeout(20):
        while line := (await process.stderr.readline()).decode():
            seen.append(line)
            if match := re.search(pattern, line):
                return match
    raise AssertionError(f"no line matching {pattern!r} in: {''.join(seen)}")


async def test_run_for_a_duration_records_every_tick(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    record = tmp_path / "served.jsonl"
    process = await start(
        "run", "--network", str(network), "--speed", "20", "--duration", "1",
        "--record", str(record), "--start", "2026-02-02T00:00:00Z",
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, err.decode()
    assert "plant plant-q serving: OPC UA opc.tcp://127.0.0.1:" in err.decode()
    records = read_records(record)
    ticks = sorted({r.tick for r in records})
    assert ticks == list(range(len(ticks)))
    assert 15 <= len(ticks) <= 21
    assert {r.protocol for r in records} == {"opcua", "modbus"}
    # Wall-clock timestamps from --start: a tick every tick_s / speed = 0.05 s (ticks after
    # tick 0 also carry the time the servers took to start).
    stamps = {r.tick: r.source_ts for r in records}
    assert stamps[0] == datetime(2026, 2, 2, tzinfo=UTC)
    gaps = [stamps[t + 1] - stamps[t] for t in ticks[1:-1]]
    assert all(gap >= timedelta(seconds=0.05) for gap in gaps)
    assert stamps[ticks[-1]] - stamps[1] < timedelta(seconds=10)


async def test_sigterm_stops_it_cleanly_while_serving(tmp_path: Path) -> None:
    process = await start("run", "--network", str(write_network(tmp_path)))
    try:
        url = (await wait_for_line(process, r"OPC UA (opc\.tcp://\S+);")).group(1)
        async with Client(url, timeout=5) as client:
            assert await client.nodes.server_state.read_value() == 0  # Running
        process.send_signal(signal.SIGTERM)
        await wait_for_line(process, r"stopped after tick \d+")
        assert await asyncio.wait_for(process.wait(), timeout=15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_scenario_run_writes_ground_truth_and_stops_after_its_duration(
    tmp_path: Path,
) -> None:
    network = write_network(tmp_path)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "name: t\nduration_s: 12\nevents:\n"
        "  - {kind: step, plant: plant-q, machine: mill-01, signal: torque, start_s: 2,\n"
        "     duration_s: 3, delta: 10}\n"
        "  - {kind: plc_restart, plant: plant-q, protocol: modbus, start_s: 5, duration_s: 2}\n"
        "  - {kind: drift, plant: plant-q, machine: mill-01, signal: bearing_temp,\n"
        "     start_s: 60, rate_per_s: 1}\n"
    )
    truth = tmp_path / "truth.jsonl"
    record = tmp_path / "served.jsonl"
    process = await start(
        "run", "--network", str(network), "--scenario", str(scenario), "--speed", "20",
        "--truth", str(truth), "--record", str(record), "--start", "2026-02-02T00:00:00Z",
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, err.decode()
    assert "3 scripted events" in err.decode()
    lines = [json.loads(line) for line in truth.read_text().splitlines()]
    # The drift at 60 s never began in a 12 s scenario.
    assert [(t["kind"], t["machine"], t["signal"]) for t in lines] == [
        ("step", "mill-01", "torque"),
        ("plc_restart", "conveyor-01", None),
    ]
    # Wall-clock truth: scenario second 5 at speed 20 is 0.25 s after tick 0 (plus the time
    # the servers took to start), and the 2 s restart lasts 0.1 s.
    restart = lines[1]
    tick0 = datetime(2026, 2, 2, tzinfo=UTC)
    start_at = datetime.fromisoformat(restart["start"])
    end_at = datetime.fromisoformat(restart["end"])
    assert restart["speed"] == 20
    assert 0.25 <= restart["start_s"] < 0.25 + 10
    assert start_at == tick0 + timedelta(seconds=restart["start_s"])
    assert end_at - start_at == timedelta(seconds=0.1)
    assert restart["end_s"] == pytest.approx(restart["start_s"] + 0.1)
    ticks = {r.tick for r in read_records(record)}
    assert 10 <= max(ticks) <= 12
    modbus_ticks = {r.tick for r in read_records(record) if r.protocol == "modbus"}
    assert not modbus_ticks & {5, 6}


async def test_bad_scenario_exits_2_naming_file_key_and_line(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "events:\n  - {kind: step, plant: plant-q, machine: mill-09, signal: torque,\n"
        "     start_s: 2, delta: 10}\n"
    )
    process = await start("run", "--network", str(network), "--scenario", str(scenario))
    _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    assert f"{scenario}: events[0].machine: no such machine in plant-q" in err.decode()
    assert "(line 2)" in err.decode()
