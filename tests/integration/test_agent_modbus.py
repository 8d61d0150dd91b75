from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import SimData, SimDevice
from pymodbus.simulator.simutils import DataType as SimType

from edge_agent.sources.modbus import ModbusSource
from plantmesh.contracts import ReadingBatch
from plantmesh.modbus_profile import DataType, DeviceProfile, RegisterSpec, Table, encode_value
from tests.integration.test_agent_support import (
    agent_config,
    all_topics,
    free_port,
    running,
    subscribed,
    until_death,
)
from tests.waiting import async_wait_for

pytestmark = pytest.mark.integration

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


def values(batches: list[ReadingBatch], machine: str, signal: str) -> list[object]:
    return [
        r.value
        for b in batches
        for r in b.readings
        if r.asset.machine == machine and r.signal == signal
    ]


async def test_on_change_delivers_each_distinct_value_once(mqtt_url: str, namespace: str) -> None:
    async with modbus_plc() as plc:
        config = agent_config(
            mqtt_url,
            namespace,
            [modbus_source(plc.port, [device(1, "pump-01", on_change=True)])],
        )
        with subscribed(mqtt_url, *all_topics(namespace)) as recorder:
            async with running(config) as agent:
                source = agent.sources[0]
                assert isinstance(source, ModbusSource)
                poller = source.devices[0]

                def speeds() -> list[object]:
                    return values(recorder.batches(), "pump-01", "speed")

                async def polls_after(count: int) -> bool:
                    return poller.polls >= count

                async def speed_seen(n: int) -> bool:
                    return len(speeds()) >= n

                await async_wait_for(lambda: speed_seen(1), 10, "the first poll's values")
                expected_speeds = [0.0]
                for speed in (1200, 1200, 1500, 0, 0, 1500):
                    await plc.set(1, HOLDING, 0, [speed])
                    if float(speed) != expected_speeds[-1]:
                        expected_speeds.append(float(speed))
                        n = len(expected_speeds)
                        await async_wait_for(lambda n=n: speed_seen(n), 10, f"speed {speed}")
                    else:  # unchanged: a few more polls must publish nothing
                        after = poller.polls + 3
                        await async_wait_for(lambda a=after: polls_after(a), 10, "3 more polls")
                await plc.set(1, HOLDING, 2, encode_value(LEVEL, 2.5))
                await plc.set(1, COILS, 0, [True])

                async def level_and_running() -> bool:
                    batches = recorder.batches()
                    return (
                        len(values(batches, "pump-01", "level")) == 2
                        and len(values(batches, "pump-01", "running")) == 2
                    )

                await async_wait_for(level_and_running, 10, "the level and running changes")
                settle = poller.polls + 5
                await async_wait_for(lambda: polls_after(settle), 10, "5 more polls")
            await until_death(recorder)  # everything published before death has arrived

        batches = recorder.batches()
        assert values(batches, "pump-01", "speed") == expected_speeds
        assert values(batches, "pump-01", "level") == [0.0, 2.5]
        assert values(batches, "pump-01", "running") == [False, True]
        units = {r.signal: r.unit for b in batches for r in b.readings}
        assert units == {"speed": "rpm", "level": "m", "running": None}
        assert [b.seq for b in batches] == list(range(len(batches)))
        assert poller.state.errors == 0


async def test_a_dead_device_does_not_delay_another(mqtt_url: str, namespace: str) -> None:
    async with modbus_plc(dead_unit=2) as plc:
        config = agent_config(
            mqtt_url,
            namespace,
            [modbus_source(plc.port, [device(1, "pump-01"), device(2, "pump-02")])],
        )
        with subscribed(mqtt_url, *all_topics(namespace)) as recorder:
            async with running(config) as agent:
                source = agent.sources[0]
                assert isinstance(source, ModbusSource)
                alive, dead = source.devices

                async def dead_failed_twice() -> bool:
                    return dead.state.errors >= 2

                await async_wait_for(dead_failed_twice, 10, "two timed-out polls of unit 2")
                # Two 0.5 s timeouts took over a second; unit 1, polled every 50 ms over its own
                # connection, kept its pace (sharing one connection it would manage about 2).
                assert alive.polls >= 10
                await plc.set(1, HOLDING, 0, [777])

                async def fresh_value() -> bool:
                    return 777.0 in values(recorder.batches(), "pump-01", "speed")

                await async_wait_for(fresh_value, 5, "unit 1's new value during unit 2's outage")
                health = {h.name: h for h in agent.source_health()}
                assert health["plc-modbus.pump-01"].connected
                assert health["plc-modbus.pump-01"].errors == 0
                assert not health["plc-modbus.pump-02"].connected
                assert health["plc-modbus.pump-02"].errors >= 2
        assert values(recorder.batches(), "pump-02", "speed") == []
