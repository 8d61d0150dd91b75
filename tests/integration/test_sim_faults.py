"""Scripted faults as a client sees them: OPC UA status codes and skewed timestamps, Modbus
exception answers and silence, servers that vanish and come back with their counters reset."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asyncua import Client, ua
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from plantmesh.modbus_profile import load_profile
from simulators import NAMESPACE_URI, NetworkConfig, Simulation
from simulators.scenario import ScenarioConfig

pytestmark = pytest.mark.integration

PROFILES = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "profiles"
START = datetime(2026, 5, 4, 8, 0, 0, tzinfo=UTC)
BEARING = "plant-f/stamping/line1/press-01/bearing_temp"
PRESSURE = "plant-f/stamping/line1/press-01/pressure"
PARTS = "plant-f/stamping/line1/press-01/good_parts"


def network() -> NetworkConfig:
    return NetworkConfig.model_validate(
        {
            "seed": 2,
            "plants": [
                {
                    "id": "plant-f",
                    "opcua": {"port": 0},
                    "modbus": {"port": 0},
                    "machines": [
                        {"id": "press-01", "area": "stamping", "line": "line1",
                         "class": "hydraulic_press", "protocol": "opcua"},
                        {"id": "conveyor-01", "area": "stamping", "line": "line1",
                         "class": "conveyor", "protocol": "modbus", "unit_id": 1,
                         "profile": load_profile(PROFILES / "conveyor.yaml")},
                    ],
                }
            ],
        }
    )  # fmt: skip


async def simulation(*events: dict[str, Any]) -> Simulation:
    scenario = ScenarioConfig.model_validate(
        {"events": [{"plant": "plant-f", **e} for e in events]}
    )
    return Simulation(network(), start=START, scenario=scenario)


@pytest.fixture
async def opcua_faults() -> AsyncIterator[Simulation]:
    sim = await simulation(
        {"kind": "bad_quality", "machine": "press-01", "signal": "bearing_temp", "start_s": 2,
         "duration_s": 2},
        {"kind": "bad_quality", "machine": "press-01", "signal": "pressure", "start_s": 2,
         "duration_s": 2, "quality": "uncertain"},
        {"kind": "clock_skew", "protocol": "opcua", "start_s": 5, "duration_s": 2,
         "offset_s": -3600},
        {"kind": "plc_restart", "protocol": "opcua", "start_s": 8, "duration_s": 2},
    )  # fmt: skip
    async with sim.serving():
        yield sim


async def read(client: Client, path: str) -> ua.DataValue:
    idx = await client.get_namespace_index(NAMESPACE_URI)
    return await client.get_node(ua.NodeId(path, idx)).read_data_value(raise_on_bad_status=False)


async def test_opcua_status_codes_clock_skew_and_restart(opcua_faults: Simulation) -> None:
    sim = opcua_faults
    url = sim.endpoints()["plant-f"].opcua_url
    assert url is not None
    async with Client(url, timeout=5) as client:
        await sim.step()  # tick 1
        first = await read(client, BEARING)
        assert first.StatusCode is not None
        assert first.StatusCode.is_good()
        await sim.step()  # tick 2: the sensors fail
        bad, uncertain = await read(client, BEARING), await read(client, PRESSURE)
        assert bad.StatusCode == ua.StatusCode(ua.StatusCodes.BadSensorFailure)
        assert uncertain.StatusCode == ua.StatusCode(ua.StatusCodes.UncertainSensorNotAccurate)
        for _ in range(3):  # ticks 3, 4, 5: sensors back, clock skewed from 5
            await sim.step()
        healthy = await read(client, BEARING)
        assert healthy.StatusCode is not None
        assert healthy.StatusCode.is_good()
        assert healthy.SourceTimestamp == START + timedelta(seconds=5) - timedelta(hours=1)
        clock = await client.nodes.server.get_child(["0:ServerStatus", "0:CurrentTime"])
        assert await clock.read_value() == START + timedelta(seconds=5) - timedelta(hours=1)
        parts_before = (await read(client, PARTS)).Value.Value  # type: ignore[union-attr]
        assert parts_before > 1000
    for _ in range(3):  # ticks 6, 7, 8: the PLC goes away at 8
        await sim.step()
    with pytest.raises((OSError, asyncio.TimeoutError)):
        async with Client(url, timeout=2) as gone:
            await read(gone, BEARING)
    await sim.step()  # tick 9: still down
    await sim.step()  # tick 10: back on the same URL, counters reset
    assert sim.endpoints()["plant-f"].opcua_url == url
    async with Client(url, timeout=5) as client:
        back = await read(client, BEARING)
        assert back.SourceTimestamp == START + timedelta(seconds=10)
        parts = (await read(client, PARTS)).Value.Value  # type: ignore[union-attr]
        assert parts < 10
    truth = {(t.kind, t.signal) for t in sim.truth}
    assert truth == {
        ("bad_quality", "bearing_temp"),
        ("bad_quality", "pressure"),
        ("clock_skew", None),
        ("plc_restart", None),
    }


@pytest.fixture
async def modbus_faults() -> AsyncIterator[Simulation]:
    sim = await simulation(
        {"kind": "bad_quality", "machine": "conveyor-01", "signal": "bearing_temp",
         "start_s": 2, "duration_s": 2},
        {"kind": "comms_loss", "protocol": "modbus", "mode": "silent", "start_s": 5,
         "duration_s": 2},
        {"kind": "plc_restart", "protocol": "modbus", "start_s": 8, "duration_s": 2},
    )  # fmt: skip
    async with sim.serving():
        yield sim


async def test_modbus_exception_silence_and_restart(modbus_faults: Simulation) -> None:
    sim = modbus_faults
    endpoints = sim.endpoints()["plant-f"]
    assert endpoints.modbus_port
    client = AsyncModbusTcpClient("127.0.0.1", port=endpoints.modbus_port, timeout=1, retries=0)
    try:
        assert await client.connect()
        # conveyor profile (1-based): bearing_temp holding 3 (wire 2), speed wire 0
        await sim.step()  # tick 1
        assert not (await client.read_holding_registers(0, count=4, device_id=1)).isError()
        await sim.step()  # tick 2: the bearing sensor fails
        failed = await client.read_holding_registers(0, count=4, device_id=1)
        assert failed.isError()
        assert failed.exception_code == 4  # slave device failure
        speed = await client.read_holding_registers(0, count=2, device_id=1)
        assert not speed.isError()  # the registers next to it still answer
        for _ in range(3):  # ticks 3, 4, 5: sensor back, silence from 5
            await sim.step()
        with pytest.raises(ModbusException):
            await client.read_holding_registers(0, count=2, device_id=1)
    finally:
        client.close()
    for _ in range(2):  # ticks 6, 7: answering again at 7
        await sim.step()
    client = AsyncModbusTcpClient("127.0.0.1", port=endpoints.modbus_port, timeout=2, retries=0)
    try:
        assert await client.connect()
        parts = await client.read_holding_registers(9, count=2, device_id=1)  # good_parts
        assert not parts.isError()
        assert parts.registers != [0, 0]
    finally:
        client.close()
    await sim.step()  # tick 8: the PLC restarts
    refused = AsyncModbusTcpClient("127.0.0.1", port=endpoints.modbus_port, timeout=1, retries=0)
    try:
        assert not await refused.connect()
    finally:
        refused.close()
    await sim.step()  # tick 9
    await sim.step()  # tick 10: back, counters from 0
    client = AsyncModbusTcpClient("127.0.0.1", port=endpoints.modbus_port, timeout=2, retries=0)
    try:
        assert await client.connect()
        parts = await client.read_holding_registers(9, count=2, device_id=1)
        assert not parts.isError()
        low_word_first = parts.registers[0] + (parts.registers[1] << 16)
        assert low_word_first < 10
    finally:
        client.close()


async def test_a_server_whose_port_was_taken_during_an_outage_comes_back_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = await simulation(
        {"kind": "plc_restart", "protocol": "modbus", "start_s": 1, "duration_s": 1}
    )
    async with sim.serving():
        port = sim.endpoints()["plant-f"].modbus_port
        assert port
        await sim.step()  # tick 1: down
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            records = await sim.step()  # tick 2: due back, but the port is taken
            assert "modbus server cannot come back yet" in caplog.text
        records = await sim.step()  # tick 3: back, every value served again
        conveyor = {r.signal for r in records if r.machine == "conveyor-01"}
        assert conveyor == {r.signal for r in load_profile(PROFILES / "conveyor.yaml").registers}
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        try:
            assert await client.connect()
            assert not (await client.read_holding_registers(0, count=2, device_id=1)).isError()
        finally:
            client.close()
