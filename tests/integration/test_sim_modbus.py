"""The Modbus TCP servers, read with pymodbus's client: every table, type and word order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from plantmesh.modbus_profile import (
    DeviceProfile,
    RegisterSpec,
    Table,
    decode_registers,
    load_profile,
)
from simulators import NetworkConfig, Simulation

pytestmark = pytest.mark.integration

PROFILES = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "profiles"
START = datetime(2026, 5, 4, 8, 0, 0, tzinfo=UTC)
DEVICES = {  # unit id: (machine id, class)
    1: ("pump-01", "centrifugal_pump"),
    2: ("conveyor-01", "conveyor"),
    3: ("compressor-01", "air_compressor"),
    4: ("press-01", "hydraulic_press"),
    5: ("mill-01", "cnc_mill"),
}


def network() -> NetworkConfig:
    machines = [
        {
            "id": machine,
            "area": "shop",
            "line": "line1",
            "class": machine_class,
            "protocol": "modbus",
            "unit_id": unit,
            "profile": load_profile(PROFILES / f"{machine_class}.yaml"),
        }
        for unit, (machine, machine_class) in DEVICES.items()
    ]
    return NetworkConfig.model_validate(
        {"seed": 5, "plants": [{"id": "plant-m", "modbus": {"port": 0}, "machines": machines}]}
    )


@pytest.fixture
async def sim() -> AsyncIterator[Simulation]:
    simulation = Simulation(network(), start=START)
    async with simulation.serving():
        yield simulation


@pytest.fixture
async def client(sim: Simulation) -> AsyncIterator[AsyncModbusTcpClient]:
    endpoints = sim.endpoints()["plant-m"]
    assert endpoints.modbus_host == "127.0.0.1"
    assert endpoints.modbus_port
    assert endpoints.modbus_units == (1, 2, 3, 4, 5)
    modbus = AsyncModbusTcpClient(endpoints.modbus_host, port=endpoints.modbus_port, timeout=3)
    assert await modbus.connect()
    yield modbus
    modbus.close()


def profile_of(sim: Simulation, unit: int) -> DeviceProfile:
    machine = next(m for m in sim.machines if m.config.unit_id == unit)
    assert isinstance(machine.config.profile, DeviceProfile)
    return machine.config.profile


def served(sim: Simulation, machine: str) -> dict[str, Any]:
    """The latest recorded value of each signal of a machine."""
    return {r.signal: r.value for r in sim.records if r.machine == machine}


async def read(
    client: AsyncModbusTcpClient, unit: int, table: Table, address: int, count: int
) -> list[int] | list[bool]:
    call = {
        Table.HOLDING: client.read_holding_registers,
        Table.INPUT: client.read_input_registers,
        Table.COIL: client.read_coils,
        Table.DISCRETE: client.read_discrete_inputs,
    }[table]
    response = await call(address, count=count, device_id=unit)
    assert not response.isError(), response
    if table in (Table.COIL, Table.DISCRETE):
        return list(response.bits[:count])
    return list(response.registers)


async def read_value(
    client: AsyncModbusTcpClient, unit: int, profile: DeviceProfile, spec: RegisterSpec
) -> float | bool:
    data = await read(client, unit, spec.table, profile.wire_address(spec), spec.width)
    if spec.table in (Table.COIL, Table.DISCRETE):
        return bool(data[0])
    return decode_registers(spec, [int(x) for x in data])


async def test_every_register_decodes_to_the_recorded_value(
    sim: Simulation, client: AsyncModbusTcpClient
) -> None:
    kinds = set()
    for _tick in range(3):
        await sim.step()
        for unit, (machine, _) in DEVICES.items():
            profile = profile_of(sim, unit)
            expected = served(sim, machine)
            assert set(expected) == {s.signal for s in profile.registers}
            for spec in profile.registers:
                value = await read_value(client, unit, profile, spec)
                assert value == expected[spec.signal], (machine, spec.signal)
                assert type(value) is type(expected[spec.signal])
                kinds.add(
                    (
                        spec.table.value,
                        spec.type.value,
                        spec.byte_order.value,
                        spec.word_order.value,
                    )
                )
    float_orders = {(b, w) for t, ty, b, w in kinds if ty == "float32"}
    assert float_orders == {
        ("big", "big"),
        ("big", "little"),
        ("little", "big"),
        ("little", "little"),
    }
    assert {t for t, *_ in kinds} == {"holding", "input", "coil", "discrete"}


async def test_a_block_read_never_mixes_two_ticks(
    sim: Simulation, client: AsyncModbusTcpClient
) -> None:
    profile = profile_of(sim, 3)  # compressor: everything in one input-register block
    specs = [s for s in profile.registers if s.table == Table.INPUT]
    first = min(profile.wire_address(s) for s in specs)
    count = max(profile.wire_address(s) + s.width for s in specs) - first
    states: list[dict[str, Any]] = []
    state: dict[str, Any] = {}

    def remember(records: list[Any]) -> None:
        state.update({r.signal: r.value for r in records if r.machine == "compressor-01"})
        states.append(dict(state))

    remember(sim.records)
    for _ in range(15):
        stepping = asyncio.create_task(sim.step())
        words = [int(w) for w in await read(client, 3, Table.INPUT, first, count)]
        remember(await stepping)
        decoded = {
            s.signal: decode_registers(
                s,
                words[profile.wire_address(s) - first : profile.wire_address(s) - first + s.width],
            )
            for s in specs
        }
        assert any(all(st[k] == v for k, v in decoded.items()) for st in states[-2:]), decoded


async def test_values_are_read_only(sim: Simulation, client: AsyncModbusTcpClient) -> None:
    profile = profile_of(sim, 1)
    spec = next(s for s in profile.registers if s.signal == "state")
    before = await read_value(client, 1, profile, spec)
    response = await client.write_register(profile.wire_address(spec), 7, device_id=1)
    assert response.isError()
    assert response.exception_code == 2
    assert await read_value(client, 1, profile, spec) == before
    coil = await client.write_coil(0, False, device_id=2)
    assert coil.isError()


async def test_unknown_units_and_addresses_are_refused(client: AsyncModbusTcpClient) -> None:
    outside = await client.read_holding_registers(200, count=2, device_id=1)
    assert outside.isError()
    assert outside.exception_code == 2
    no_coils = await client.read_coils(0, count=1, device_id=1)  # the pump profile has none
    assert no_coils.isError()
    assert no_coils.exception_code == 2
    unknown = await client.read_holding_registers(0, count=1, device_id=77)
    assert unknown.isError()
    assert unknown.exception_code in (2, 0x0B)
