"""Every Modbus type, byte order and word order the agent reads decodes to the true value:
against the simulator's production records (the demo's device profiles), and against a server
holding every type in every order, encoded here independently of plantmesh's codec."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from edge_agent.config import ModbusSourceConfig
from edge_agent.sources import decoding
from edge_agent.sources.modbus import ModbusSource
from plantmesh.contracts import STATUS_BAD_OUT_OF_RANGE, Quality, Reading, encode
from plantmesh.modbus_profile import DataType, DeviceProfile, Order, RegisterSpec
from simulators import NetworkConfig, Simulation, load_network
from simulators.network import Protocol
from tests.support.modbus import HOLDING, modbus_plc

pytestmark = pytest.mark.integration

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "network.yaml"
T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def modbus_only(network: NetworkConfig) -> NetworkConfig:
    """The demo's Modbus machines (every demo profile), no OPC UA, no scripted outages."""
    plants = []
    for plant in network.plants:
        machines = [m for m in plant.machines if m.protocol == Protocol.MODBUS]
        if machines:
            plants.append(plant.model_copy(update={"opcua": None, "machines": machines}))
    return network.model_copy(update={"plants": plants, "events": []}).with_free_ports()


@asynccontextmanager
async def connected(source: ModbusSource) -> AsyncIterator[list[AsyncModbusTcpClient]]:
    clients = [
        AsyncModbusTcpClient(source.config.host, port=source.config.port, timeout=2, retries=0)
        for _ in source.devices
    ]
    try:
        for client in clients:
            assert await client.connect()
        yield clients
    finally:
        for client in clients:
            client.close()


async def test_demo_profiles_decode_to_the_simulators_values() -> None:
    network = modbus_only(load_network(DEMO))
    profiles = {m.profile.name for p in network.plants for m in p.machines}  # type: ignore[union-attr]
    assert profiles == {
        "air_compressor",
        "centrifugal_pump",
        "cnc_mill",
        "conveyor",
        "hydraulic_press",
    }
    sim = Simulation(network, seed=11, start=T0)
    readings: list[Reading] = []
    async with sim.serving():
        sources = []
        for plant in network.plants:
            endpoint = sim.endpoints()[plant.id]
            devices = [
                {
                    "unit_id": m.unit_id,
                    "profile": m.profile,
                    "area": m.area,
                    "line": m.line,
                    "machine": m.id,
                }
                for m in plant.machines
            ]
            config = ModbusSourceConfig.model_validate(
                {
                    "type": "modbus",
                    "name": plant.id,
                    "host": endpoint.modbus_host,
                    "port": endpoint.modbus_port,
                    "devices": devices,
                }
            )
            sources.append((plant.id, ModbusSource(config, plant.id, decoding(readings.append))))
        checked = 0
        for tick in range(6):
            if tick:
                await sim.step()
            truth = {r.series_key: r.value for r in sim.records if r.protocol == "modbus"}
            readings.clear()
            for _, source in sources:
                async with connected(source) as clients:
                    for poller, client in zip(source.devices, clients, strict=True):
                        await poller.poll(client)
            decoded = {r.series_key: r.value for r in readings}
            assert decoded.keys() == truth.keys()
            wrong = {k: (decoded[k], v) for k, v in truth.items() if decoded[k] != v}
            assert not wrong, f"tick {tick}: (decoded, true) {wrong}"
            checked += len(truth)
    assert checked > 6 * 30


NUMERIC = [t for t in DataType if t != DataType.BOOL]
FORMATS = {
    DataType.INT16: "h",
    DataType.UINT16: "H",
    DataType.INT32: "i",
    DataType.UINT32: "I",
    DataType.INT64: "q",
    DataType.UINT64: "Q",
    DataType.FLOAT32: "f",
    DataType.FLOAT64: "d",
}
SAMPLES: dict[DataType, float] = {
    DataType.INT16: -12345,
    DataType.UINT16: 54321,
    DataType.INT32: -1_234_567_890,
    DataType.UINT32: 3_456_789_012,
    DataType.INT64: -(2**53) + 12345,
    DataType.UINT64: 2**53 - 4321,
    DataType.FLOAT32: -1234.5,  # exact in float32
    DataType.FLOAT64: 98765.4321,
}


def wire_registers(
    dtype: DataType, value: float, byte_order: Order, word_order: Order
) -> list[int]:
    """What a PLC with that layout holds, built straight from struct: big-endian bytes, split
    into words, words reversed for little word order, bytes swapped for little byte order."""
    raw = int(value) if dtype not in (DataType.FLOAT32, DataType.FLOAT64) else value
    data = struct.pack(">" + FORMATS[dtype], raw)
    words = [data[i : i + 2] for i in range(0, len(data), 2)]
    if word_order == Order.LITTLE:
        words.reverse()
    if byte_order == Order.LITTLE:
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


def every_layout() -> tuple[DeviceProfile, dict[int, list[int]], dict[str, float]]:
    specs, image, expected = [], {}, {}
    address = 1  # 1-based addressing: wire address = address - 1
    for dtype in NUMERIC:
        orders = [(b, w) for b in Order for w in Order]
        if dtype in (DataType.INT16, DataType.UINT16):
            orders = [(b, Order.BIG) for b in Order]  # one word: word order does not apply
        for byte_order, word_order in orders:
            signal = f"{dtype.value}_{byte_order.value[0]}{word_order.value[0]}"
            scale, offset = (0.5, 10.0) if dtype == DataType.INT32 else (1.0, 0.0)
            spec = RegisterSpec(
                signal=signal,
                address=address,
                type=dtype,
                byte_order=byte_order,
                word_order=word_order,
                scale=scale,
                offset=offset,
            )
            specs.append(spec)
            image[address - 1] = wire_registers(dtype, SAMPLES[dtype], byte_order, word_order)
            expected[signal] = SAMPLES[dtype] * scale + offset
            address += spec.width + 1  # a gap of one register: coalesced all the same
    profile = DeviceProfile(name="every_layout", addressing=1, registers=specs)
    return profile, image, expected


async def test_every_type_and_order_decodes_from_a_real_server() -> None:
    profile, image, expected = every_layout()
    async with modbus_plc(registers=128) as plc:
        for address, words in image.items():
            await plc.set(1, HOLDING, address, words)
        readings: list[Reading] = []
        device: dict[str, Any] = {
            "unit_id": 1,
            "profile": profile,
            "area": "a",
            "line": "l",
            "machine": "m",
        }
        config = ModbusSourceConfig.model_validate(
            {
                "type": "modbus",
                "name": "mb",
                "host": "127.0.0.1",
                "port": plc.port,
                "devices": [device],
            }
        )
        source = ModbusSource(config, "p", decoding(readings.append))
        async with connected(source) as (client,):
            await source.devices[0].poll(client)
    assert len(source.devices[0].plan) == 1  # 103 registers, gaps included: one request
    assert {r.signal: r.value for r in readings} == expected
    assert len(expected) == 2 * 2 + 6 * 4


async def test_exact_numbers_from_a_real_server() -> None:
    """A float32 holding 123.456 is published as 123.456 (not 123.45600128173828) in every
    order; a 64-bit integer beyond 2**53 as a Bad reading without a value, in every order."""
    held = {DataType.FLOAT32: 123.456, DataType.INT64: -(2**60) - 1, DataType.UINT64: 2**63 + 1}
    specs: list[RegisterSpec] = []
    image: dict[int, list[int]] = {}
    for dtype, value in held.items():
        for byte_order in Order:
            for word_order in Order:
                address = len(specs) * 5
                signal = f"{dtype.value}_{byte_order.value[0]}{word_order.value[0]}"
                specs.append(
                    RegisterSpec(
                        signal=signal,
                        address=address,
                        type=dtype,
                        byte_order=byte_order,
                        word_order=word_order,
                    )
                )
                image[address] = wire_registers(dtype, value, byte_order, word_order)
    profile = DeviceProfile(name="exact", registers=specs)
    async with modbus_plc(registers=128) as plc:
        for address, words in image.items():
            await plc.set(1, HOLDING, address, words)
        readings: list[Reading] = []
        device = {"unit_id": 1, "profile": profile, "area": "a", "line": "l", "machine": "m"}
        config = ModbusSourceConfig.model_validate(
            {"type": "modbus", "name": "mb", "host": "127.0.0.1", "port": plc.port,
             "devices": [device]}
        )  # fmt: skip
        source = ModbusSource(config, "p", decoding(readings.append))
        async with connected(source) as (client,):
            await source.devices[0].poll(client)
    published = {r.signal: r for r in readings}
    assert len(published) == 12
    for signal, reading in published.items():
        if signal.startswith("float32"):
            assert repr(reading.value) == "123.456", signal
            assert reading.quality is Quality.GOOD
            assert b'"value":123.456,' in encode(reading)
        else:
            assert reading.value is None, signal
            assert (reading.status_code, reading.quality) == (STATUS_BAD_OUT_OF_RANGE, Quality.BAD)
