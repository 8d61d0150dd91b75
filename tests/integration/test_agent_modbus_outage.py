"""Modbus sources without the rest of the agent: a server that goes away and comes back, and
a dead device among many live ones on the same server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from edge_agent.config import ModbusSourceConfig
from edge_agent.sources import decoding
from edge_agent.sources.modbus import ModbusSource
from plantmesh.contracts import Reading
from tests.support.modbus import HOLDING, device, modbus_plc, modbus_source
from tests.support.ports import free_port
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration


@asynccontextmanager
async def polling(config: dict[str, Any]) -> AsyncIterator[tuple[ModbusSource, list[Reading]]]:
    readings: list[Reading] = []
    source = ModbusSource(
        ModbusSourceConfig.model_validate(config), "plant-a", decoding(readings.append)
    )
    async with asyncio.TaskGroup() as tg:
        tasks = source.start(tg)
        try:
            yield source, readings
        finally:
            for task in tasks:
                task.cancel()


def speeds(readings: list[Reading], machine: str) -> list[object]:
    return [r.value for r in list(readings) if r.asset.machine == machine and r.signal == "speed"]


async def test_reconnects_with_backoff_after_the_server_comes_back() -> None:
    port = free_port()
    config = modbus_source(port, [device(1, "pump-01")]) | {"reconnect_max_s": 0.5}
    async with polling(config) as (source, readings):
        poller = source.devices[0]
        async with modbus_plc(port=port) as plc:
            await plc.set(1, HOLDING, 0, [1200])

            async def seen(value: float) -> bool:
                return value in speeds(readings, "pump-01")

            await async_wait_for(lambda: seen(1200.0), 10, "speed 1200")

        async def failing() -> bool:
            return poller.state.errors >= 3 and not poller.state.connected

        await async_wait_for(failing, 10, "three failed attempts while the server is away")
        async with modbus_plc(port=port) as plc:
            await plc.set(1, HOLDING, 0, [1500])
            await async_wait_for(lambda: seen(1500.0), 10, "speed 1500 from the new server")
            assert poller.state.connected
    assert speeds(readings, "pump-01")[-1] == 1500.0


async def test_a_dead_device_does_not_slow_ten_live_ones() -> None:
    async with modbus_plc(dead_unit=2) as plc:
        live = [device(1, f"pump-{i:02}") for i in range(10)]
        config = modbus_source(plc.port, [*live, device(2, "dead-pump")])
        async with polling(config) as (source, readings):
            *alive, dead = source.devices
            start = [p.polls for p in alive]

            async def dead_failed_twice() -> bool:
                return dead.state.errors >= 2

            await async_wait_for(dead_failed_twice, 10, "two timed-out polls of unit 2")
            # Two 0.5 s timeouts took over a second. A device queued behind them would have made
            # 0-2 polls meanwhile; each live one, polled every 50 ms over its own connection,
            # makes ~20 (at least 5 leaves room for a loaded machine).
            assert all(p.polls - s >= 5 for p, s in zip(alive, start, strict=True))
            assert all(p.state.errors == 0 and p.state.connected for p in alive)
    assert speeds(readings, "dead-pump") == []
