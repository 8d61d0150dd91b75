"""A Modbus client not written in Python reads the simulator: mbpoll (Debian package `mbpoll`,
a libmodbus-based command-line master). Install it with `apt-get install -y mbpoll`."""

from __future__ import annotations

import asyncio
import math
import re
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from plantmesh.modbus_profile import load_profile
from simulators import NetworkConfig, ScenarioConfig, Simulation

pytestmark = pytest.mark.integration

PROFILE = (
    Path(__file__).resolve().parents[2] / "deploy" / "demo" / "profiles" / "centrifugal_pump.yaml"
)
UNIT = 7
VALUE_LINE = re.compile(r"^\[(\d+)\]:\s+(\S+)", re.MULTILINE)


@pytest.fixture
async def sim() -> AsyncIterator[Simulation]:
    network = NetworkConfig.model_validate(
        {
            "seed": 8,
            "plants": [
                {
                    "id": "plant-m",
                    "modbus": {"port": 0},
                    "machines": [
                        {
                            "id": "pump-01",
                            "area": "utilities",
                            "line": "line1",
                            "class": "centrifugal_pump",
                            "protocol": "modbus",
                            "unit_id": UNIT,
                            "profile": load_profile(PROFILE),
                        }
                    ],
                }
            ],
        }
    )
    simulation = Simulation(network, start=datetime(2026, 1, 1, tzinfo=UTC))
    async with simulation.serving():
        await simulation.step()
        yield simulation


async def mbpoll(port: int, *args: str) -> dict[int, str]:
    """Run mbpoll once (PDU addressing, -0) and return {address: printed value}."""
    executable = shutil.which("mbpoll")
    if executable is None:
        pytest.fail("mbpoll is not installed: apt-get install -y mbpoll")
    process = await asyncio.create_subprocess_exec(
        executable, "-m", "tcp", "-p", str(port), "-a", str(UNIT), "-0", "-1", "-o", "3",
        *args, "127.0.0.1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=15)
    assert process.returncode == 0, err.decode()
    return {int(a): v for a, v in VALUE_LINE.findall(out.decode())}


def served(sim: Simulation) -> dict[str, float | bool]:
    return {r.signal: r.value for r in sim.records}


async def test_mbpoll_reads_float32_in_both_word_orders(sim: Simulation) -> None:
    port = sim.endpoints()["plant-m"].modbus_port
    assert port
    values = served(sim)
    # motor_current: holding 2, float32 with the low word first (mbpoll's default order)
    current = await mbpoll(port, "-t", "4:float", "-r", "2", "-c", "1")
    assert math.isclose(float(current[2]), float(values["motor_current"]), rel_tol=1e-5)
    # speed: holding 0, float32 big-endian words (-B)
    speed = await mbpoll(port, "-t", "4:float", "-B", "-r", "0", "-c", "1")
    assert math.isclose(float(speed[0]), float(values["speed"]), rel_tol=1e-5)


async def test_mbpoll_reads_counter_and_discrete_input(sim: Simulation) -> None:
    port = sim.endpoints()["plant-m"].modbus_port
    assert port
    values = served(sim)
    energy = await mbpoll(port, "-t", "4:int", "-B", "-r", "10", "-c", "1")
    assert int(energy[10]) * 0.01 == pytest.approx(values["energy"], abs=1e-9)
    running = await mbpoll(port, "-t", "1", "-r", "0", "-c", "1")
    assert bool(int(running[0])) is values["running"]


async def test_mbpoll_sees_a_failed_sensor_as_slave_device_failure() -> None:
    scenario = ScenarioConfig.model_validate(
        {"events": [{"kind": "bad_quality", "plant": "plant-m", "machine": "pump-01",
                     "signal": "bearing_temp", "start_s": 1, "duration_s": 5}]}
    )  # fmt: skip
    network = NetworkConfig.model_validate(
        {"plants": [{"id": "plant-m", "modbus": {"port": 0}, "machines": [
            {"id": "pump-01", "area": "utilities", "line": "line1", "class": "centrifugal_pump",
             "protocol": "modbus", "unit_id": UNIT, "profile": load_profile(PROFILE)}]}]}
    )  # fmt: skip
    simulation = Simulation(network, start=datetime(2026, 1, 1, tzinfo=UTC), scenario=scenario)
    async with simulation.serving():
        await simulation.step()  # tick 1: the bearing sensor (input register 0) fails
        port = simulation.endpoints()["plant-m"].modbus_port
        executable = shutil.which("mbpoll")
        assert executable is not None, "mbpoll is not installed: apt-get install -y mbpoll"
        process = await asyncio.create_subprocess_exec(
            executable, "-m", "tcp", "-p", str(port), "-a", str(UNIT), "-0", "-1", "-o", "3",
            "-t", "3", "-r", "0", "-c", "1", "127.0.0.1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), timeout=15)
        assert "Slave device or server failure" in (out + err).decode()
        vibration = await mbpoll(port, "-t", "3", "-r", "1", "-c", "1")  # the next register
        assert int(vibration[1]) * 0.01 == pytest.approx(served(simulation)["vibration_rms"])
