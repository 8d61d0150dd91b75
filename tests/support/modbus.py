"""A Modbus TCP PLC in this event loop (pymodbus' simulator) with the agent's sample pump profile,
and Modbus source configs for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import SimData, SimDevice
from pymodbus.simulator.simutils import DataType as SimType

from plantmesh.modbus_profile import DataType, DeviceProfile, RegisterSpec, Table
from tests.support.ports import free_port
from tests.support.waiting import async_wait_for

LEVEL = RegisterSpec(signal="level", address=2, type=DataType.FLOAT32, unit="m")
PUMP = DeviceProfile(
    name="pump",
    registers=[
        RegisterSpec(signal="speed", address=0, type=DataType.UINT16, unit="rpm"),
        LEVEL,
        RegisterSpec(signal="running", table=Table.COIL, address=0, type=DataType.BOOL),
    ],
)
HOLDING, COILS = 3, 5  # function codes the simulator's setValues understands


def _blocks(
    registers: int = 32,
) -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
    return (
        [SimData(0, count=16, values=False, datatype=SimType.BITS)],
        [SimData(0, count=16, values=False, datatype=SimType.BITS)],
        [SimData(0, count=registers, values=0, datatype=SimType.REGISTERS)],
        [SimData(0, count=registers, values=0, datatype=SimType.REGISTERS)],
    )


@dataclass
class ModbusPlc:
    server: ModbusTcpServer
    port: int
    release: asyncio.Event = field(default_factory=asyncio.Event)
    stuck: int = 0

    async def set(self, unit: int, fc: int, address: int, values: list[Any]) -> None:
        await self.server.async_setValues(unit, fc, address, values)


@asynccontextmanager
async def modbus_plc(
    dead_unit: int | None = None, registers: int = 32, port: int | None = None
) -> AsyncIterator[ModbusPlc]:
    """Unit 1 answers; `dead_unit` (if any) takes every request and never answers, like a
    device behind a gateway that has lost power."""
    port = port or free_port()
    plc = ModbusPlc(server=None, port=port)  # type: ignore[arg-type]

    async def never_answer(*_: Any) -> None:
        plc.stuck += 1
        try:
            await plc.release.wait()
        finally:
            plc.stuck -= 1

    devices = [SimDevice(1, simdata=_blocks(registers))]
    if dead_unit is not None:
        devices.append(SimDevice(dead_unit, simdata=_blocks(registers), action=never_answer))
    plc.server = ModbusTcpServer(devices, address=("127.0.0.1", port))
    await plc.server.serve_forever(background=True)
    try:
        yield plc
    finally:
        plc.release.set()

        async def unstuck() -> bool:
            return plc.stuck == 0

        await async_wait_for(unstuck, 10, "the dead unit's pending requests to end")
        await plc.server.shutdown()


def device(unit_id: int, machine: str, **extra: Any) -> dict[str, Any]:
    return {
        "unit_id": unit_id,
        "profile": PUMP,
        "area": "utilities",
        "line": "line1",
        "machine": machine,
        "poll_interval_s": 0.05,
        **extra,
    }


def modbus_source(port: int, devices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "modbus",
        "name": "plc-modbus",
        "host": "127.0.0.1",
        "port": port,
        "timeout_s": 0.5,
        "devices": devices,
    }
