"""One plant's Modbus TCP server: every Modbus machine of the plant under its unit id, its tables
laid out by its device profile (see simulators.modbus_image).

Values are read-only to clients (a write is answered with "illegal data address", as a PLC does
for a measured value). A read touching the registers of a failed sensor is answered with exception
4, "slave device failure". While `silent` (a scripted communications loss) requests get no answer
at all: the client times out, the connection stays open. The image of a device is replaced whole once per tick and copied into
pymodbus's block, synchronously, while a request is being answered, so a client reading a block
never sees half a tick.
"""

from __future__ import annotations

import asyncio
from typing import cast

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimAction, SimData, SimDevice

from plantmesh.modbus_profile import Table
from simulators.engine import SimMachine
from simulators.errors import ModbusServerError
from simulators.modbus_image import Block, DeviceLayout, RegisterImage

# Modbus function code -> the table it addresses.
FUNCTION_TABLES: dict[int, Table] = {
    1: Table.COIL,
    5: Table.COIL,
    15: Table.COIL,
    2: Table.DISCRETE,
    3: Table.HOLDING,
    6: Table.HOLDING,
    16: Table.HOLDING,
    22: Table.HOLDING,
    23: Table.HOLDING,
    4: Table.INPUT,
}
SIMDEVICE_ORDER = (Table.COIL, Table.DISCRETE, Table.HOLDING, Table.INPUT)
CATCH_ALL_UNIT = 0  # pymodbus: the device answering unit ids no other device has


def _simdata(table: Table, block: Block | None) -> SimData:
    if table in (Table.COIL, Table.DISCRETE):
        # pymodbus needs at least one block per bit table; an unused one is refused by the action.
        start, words = (block.start, block.words) if block else (0, 1)
        return SimData(start, values=[False] * (words * 16), datatype=DataType.BITS)
    if block is None:
        return SimData(0, datatype=DataType.INVALID)
    return SimData(block.start, values=[0] * block.words, datatype=DataType.REGISTERS)


class PlantModbusServer:
    def __init__(self, plant: str, host: str, port: int, machines: list[SimMachine]) -> None:
        self.plant = plant
        self.host = host
        self.port = port  # the configured port until start(), then the bound one
        self.machines = [m for m in machines if m.layout is not None]
        self._images: dict[int, RegisterImage] = {}
        self._failed: dict[int, list[tuple[Table, int, int]]] = {}
        self._answering = asyncio.Event()
        self._answering.set()
        self._server: ModbusTcpServer | None = None

    @property
    def silent(self) -> bool:
        return not self._answering.is_set()

    @silent.setter
    def silent(self, value: bool) -> None:
        if value:
            self._answering.clear()
        else:
            self._answering.set()

    def _device(self, unit_id: int, layout: DeviceLayout | None) -> SimDevice:
        blocks = layout.blocks if layout else {}
        coils, discrete, holding, inputs = ([_simdata(t, blocks.get(t))] for t in SIMDEVICE_ORDER)
        return SimDevice(
            id=unit_id, simdata=(coils, discrete, holding, inputs), action=self._action(unit_id)
        )

    def _action(self, unit_id: int) -> SimAction:
        async def serve_image(
            function_code: int,
            _start_address: int,
            address: int,
            count: int,
            registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            if not self._answering.is_set():
                await self._answering.wait()
            if unit_id == CATCH_ALL_UNIT:
                return ExcCodes.GATEWAY_NO_RESPONSE
            if set_values is not None:
                return ExcCodes.ILLEGAL_ADDRESS
            table = FUNCTION_TABLES.get(function_code)
            words = self._images.get(unit_id, {}).get(table) if table else None
            if words is None:
                return ExcCodes.ILLEGAL_ADDRESS
            for failed_table, first, end in self._failed.get(unit_id, ()):
                if failed_table == table and address < end and first < address + count:
                    return ExcCodes.DEVICE_FAILURE
            registers[: len(words)] = words
            return None

        return serve_image

    def publish(self) -> None:
        """Serve the machines' current images (call after each tick)."""
        for machine in self.machines:
            assert machine.config.unit_id is not None
            self._images[machine.config.unit_id] = machine.image
            self._failed[machine.config.unit_id] = machine.failed_registers

    def restarted(self) -> PlantModbusServer:
        """A new server for the same plant on the port this one had (after a scripted outage)."""
        return PlantModbusServer(self.plant, self.host, self.port, self.machines)

    async def start(self) -> None:
        devices = [self._device(CATCH_ALL_UNIT, None)]
        for machine in self.machines:
            assert machine.config.unit_id is not None
            devices.append(self._device(machine.config.unit_id, machine.layout))
        server = ModbusTcpServer(devices, address=(self.host, self.port))
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:  # pymodbus reports a failed listen this way (it logs why)
            raise ModbusServerError(
                f"{self.plant}: Modbus server cannot listen on {self.host}:{self.port}"
            ) from exc
        self._server = server
        listener = cast(asyncio.Server, server.transport)
        self.port = int(listener.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self._answering.set()  # release requests held by a silent spell
        if self._server is not None:
            server, self._server = self._server, None
            await server.shutdown()  # type: ignore[no-untyped-call]
