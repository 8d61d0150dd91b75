"""`plantmesh agent discover modbus` against the project's Modbus simulator (a centrifugal pump
whose map mixes ABCD, CDAB, BADC and DCBA floats) and pymodbus' simulator: every order shown,
the right one recognisable, and a picked fragment that the agent's Modbus source polls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.config import ModbusSourceConfig, load_agent_config
from edge_agent.sources import decoding
from edge_agent.sources.modbus import ModbusSource
from plantmesh.contracts import Reading
from plantmesh.modbus_profile import decode_registers, encode_value, load_profile
from simulators import NetworkConfig, Simulation
from tests.support.agent_cli import agent_command
from tests.support.modbus import COILS, modbus_plc
from tests.support.ports import free_port
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

START = datetime(2026, 5, 4, 8, 0, 0, tzinfo=UTC)
PUMP = load_profile(
    Path(__file__).resolve().parents[2] / "deploy/demo/profiles/centrifugal_pump.yaml"
)
UNIT = 3


@pytest.fixture
async def sim() -> AsyncIterator[Simulation]:
    machine = {"id": "pump-01", "area": "utilities", "line": "line2", "class": "centrifugal_pump",
               "protocol": "modbus", "unit_id": UNIT, "profile": PUMP}  # fmt: skip
    network = {"seed": 5, "plants": [{"id": "plant-x", "modbus": {"port": 0},
                                      "machines": [machine]}]}  # fmt: skip
    simulation = Simulation(NetworkConfig.model_validate(network), start=START)
    async with simulation.serving():
        await simulation.step()
        yield simulation


def endpoint(sim: Simulation) -> str:
    plant = sim.endpoints()["plant-x"]
    return f"{plant.modbus_host}:{plant.modbus_port}"


def as_served(signal: str, sim: Simulation) -> float:
    """The signal's last value as its registers carry it (float32 rounding included)."""
    spec = next(r for r in PUMP.registers if r.signal == signal)
    value = next(float(r.value) for r in reversed(sim.records) if r.signal == signal)
    return decode_registers(spec, encode_value(spec, value))


def table_cells(text: str) -> dict[tuple[int, str], dict[str, str]]:
    """{(address, order): {column: cell}} of a register table."""
    lines = text.splitlines()
    columns = lines[1].split()[3:]
    cells: dict[tuple[int, str], dict[str, str]] = {}
    address = -1
    for line in lines[2:]:
        tokens = line.split()
        if tokens[0].isdigit():
            address, tokens = int(tokens[0]), tokens[2:]
        cells[(address, tokens[0])] = dict(zip(columns, tokens[1:], strict=True))
    return cells


async def test_every_layout_is_shown_and_the_map_s_own_is_the_value(sim: Simulation) -> None:
    code, out, err = await agent_command(
        "discover", "modbus", endpoint(sim), "--unit", str(UNIT), "--count", "6"
    )
    assert code == 0, err
    cells = table_cells(out)
    assert len(cells) == 6 * 4
    assert cells[(0, "ABCD")]["float32"] == f"{as_served('speed', sim):.7g}"
    assert cells[(2, "CDAB")]["float32"] == f"{as_served('motor_current', sim):.7g}"
    assert cells[(2, "ABCD")]["float32"] != cells[(2, "CDAB")]["float32"]
    assert cells[(4, "ABCD")]["uint16"] == f"{as_served('state', sim):g}"
    code, out, err = await agent_command(
        "discover", "modbus", endpoint(sim), "--unit", str(UNIT),
        "--table", "input", "--start", "2", "--count", "4", "--types", "float32",
    )  # fmt: skip
    assert code == 0, err
    cells = table_cells(out)
    assert cells[(2, "BADC")]["float32"] == f"{as_served('pressure', sim):.7g}"
    assert cells[(4, "DCBA")]["float32"] == f"{as_served('flow', sim):.7g}"
    assert cells[(5, "DCBA")]["float32"] == "-"


async def test_picked_registers_become_a_fragment_the_agent_polls(
    sim: Simulation, tmp_path: Path
) -> None:
    fragment = tmp_path / "fragment.yaml"
    code, _out, err = await agent_command(
        "discover", "modbus", endpoint(sim), "--unit", str(UNIT), "--count", "6",
        "--pick", "2:float32:CDAB:motor_current:A", "--pick", "4:uint16:state",
        "--area", "utilities", "--line", "line2", "--machine", "pump-01",
        "--name", "pumps", "--output", str(fragment),
    )  # fmt: skip
    assert code == 0, err
    current = as_served("motor_current", sim)
    assert f"discover: picked motor_current = {current:g} (holding 2 float32" in err
    agent_file = tmp_path / "agent.yaml"
    agent_file.write_text("gateway_id: gw-x\nplant: plant-x\n" + fragment.read_text())
    source = load_agent_config(agent_file).sources[0]
    assert isinstance(source, ModbusSourceConfig)
    assert [r.signal for r in source.devices[0].device_profile.registers] == [
        "motor_current",
        "state",
    ]
    readings: list[Reading] = []
    async with asyncio.TaskGroup() as tg:
        tasks = ModbusSource(source, "plant-x", decoding(readings.append)).start(tg)

        async def polled() -> bool:
            return {r.signal for r in readings} == {"motor_current", "state"}

        try:
            await async_wait_for(polled, 20, "readings of the picked registers")
        finally:
            for task in tasks:
                task.cancel()
    reading = next(r for r in readings if r.signal == "motor_current")
    assert (reading.asset.machine, reading.unit, reading.value) == ("pump-01", "A", current)


async def test_coils_and_a_range_the_device_refuses() -> None:
    async with modbus_plc(registers=32) as plc:
        await plc.set(1, COILS, 2, [True])
        code, out, err = await agent_command(
            "discover", "modbus", f"127.0.0.1:{plc.port}", "--table", "coil", "--count", "4"
        )
        assert code == 0, err
        assert out.splitlines()[1:] == ["0      0", "1      0", "2      1", "3      0"]
        code, out, err = await agent_command(
            "discover", "modbus", f"127.0.0.1:{plc.port}", "--start", "30", "--count", "8"
        )
        assert code == 1
        assert out == ""
        assert "answered holding 30..37 with exception code" in err


async def test_unreachable_device_fails_with_the_endpoint() -> None:
    port = free_port()
    code, out, err = await agent_command(
        "discover", "modbus", f"127.0.0.1:{port}", "--timeout", "0.5"
    )
    assert code == 1
    assert out == ""
    assert err.strip() == f"discover: cannot connect to 127.0.0.1:{port}"
