"""Modbus TCP source: every device is polled by its own task over its own connection.

pymodbus serialises the requests of one connection, so a device that does not answer would hold
up every other device sharing it for a whole timeout per poll. One connection per device keeps a
dead pump from delaying the press next to it (Modbus TCP servers and gateways accept several).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge_agent.config import ModbusDeviceConfig, ModbusSourceConfig
from edge_agent.errors import ModbusReadError, report
from edge_agent.sources import ReadingSink, SourceState, trusted_reading
from edge_agent.sources.modbus_plan import BIT_TABLES, ReadRequest, decode_answer, plan_reads
from plantmesh.contracts import AssetPath, SourceHealth
from plantmesh.modbus_profile import Table
from plantmesh.resilience import Backoff, ErrorLog, raise_if_cancelled

log = logging.getLogger(__name__)

READ_METHOD = {
    Table.HOLDING: "read_holding_registers",
    Table.INPUT: "read_input_registers",
    Table.COIL: "read_coils",
    Table.DISCRETE: "read_discrete_inputs",
}


class ModbusSource:
    """All devices behind one Modbus TCP endpoint (a PLC, or a gateway to a serial bus)."""

    def __init__(self, config: ModbusSourceConfig, plant: str, sink: ReadingSink) -> None:
        self.config = config
        self.name = config.name
        self.devices = [DevicePoller(config, device, plant, sink) for device in config.devices]

    def start(self, tg: asyncio.TaskGroup) -> list[asyncio.Task[None]]:
        return [
            tg.create_task(d.run(), name=f"source:{self.name}:unit{d.device.unit_id}")
            for d in self.devices
        ]

    def health(self) -> list[SourceHealth]:
        return [d.state.health() for d in self.devices]


class DevicePoller:
    def __init__(
        self,
        source: ModbusSourceConfig,
        device: ModbusDeviceConfig,
        plant: str,
        sink: ReadingSink,
    ) -> None:
        self.source = source
        self.device = device
        self.profile = device.device_profile
        self.plan = plan_reads(self.profile)
        self.asset = AssetPath(
            plant=plant, area=device.area, line=device.line, machine=device.machine
        )
        # Health names one device: "<source>.<machine>", cut to the 64 characters a Name allows.
        self.state = SourceState(f"{source.name}.{device.machine}"[:64])
        self.polls = 0
        self._sink = sink
        self._last: dict[str, float | bool] = {}
        self._errors = ErrorLog(
            log,
            f"modbus {source.host}:{source.port} unit {device.unit_id} ({device.machine})",
        )
        # Bad values are a profile or PLC-program problem, logged once for the agent's life.
        self._value_errors = ErrorLog(log, f"modbus unit {device.unit_id} ({device.machine})")

    async def run(self) -> None:
        client = AsyncModbusTcpClient(
            self.source.host,
            port=self.source.port,
            timeout=self.source.timeout_s,
            retries=0,  # a missed poll is retried by the next poll, not by piling up requests
            reconnect_delay=0,  # reconnects are ours, with jittered backoff
            name=self.state.name,
        )
        interval = self.device.poll_interval_s
        backoff = Backoff(
            min(interval, 1.0, self.source.reconnect_max_s), self.source.reconnect_max_s
        )
        loop = asyncio.get_running_loop()
        try:
            next_poll = loop.time()
            while True:
                raise_if_cancelled()
                if not await self._poll_once(client):
                    await asyncio.sleep(backoff.next_delay())
                    next_poll = loop.time()
                    continue
                backoff.reset()
                # Fixed cadence; a poll that overran skips the ticks it missed.
                next_poll = max(next_poll + interval, loop.time())
                await asyncio.sleep(next_poll - loop.time())
        finally:
            self.state.connected = False
            client.close()

    async def _poll_once(self, client: AsyncModbusTcpClient) -> bool:
        if not client.connected and not await client.connect():
            self._fail("connect", "no connection (refused or timed out)")
            return False
        try:
            await self.poll(client)
        except ModbusReadError as exc:
            # The device answered, with an exception code: the connection itself is fine.
            self._fail("poll", exc)
            return False
        except (ModbusException, OSError, TimeoutError, ValueError) as exc:
            # No or garbled answer: start over on a fresh connection so a late answer to this
            # request cannot be taken for the answer to the next one.
            self._fail("poll", exc)
            client.close()
            return False
        return True

    async def poll(self, client: AsyncModbusTcpClient) -> None:
        """Read the whole profile once and publish what it says."""
        source_ts = datetime.now(UTC)
        values: list[tuple[Any, float | bool]] = []
        for request in self.plan:
            values.extend(decode_answer(request, await self._read(client, request)))
        self.polls += 1
        gateway_ts = datetime.now(UTC)
        published = 0
        for spec, value in values:
            if isinstance(value, float) and not math.isfinite(value):
                self.state.errors += 1
                report(self._value_errors, spec.signal, "register holds NaN or infinity")
                continue
            if self.device.on_change and self._last.get(spec.signal) == value:
                continue
            self._last[spec.signal] = value
            # Valid by construction (names from the profile, finite numbers, aware times):
            # validating 10,000 readings a second again would cost a tenth of a core.
            self._sink(
                trusted_reading(self.asset, spec.signal, value, spec.unit, source_ts, gateway_ts)
            )
            published += 1
        self.state.connected = True
        self.state.seen(published)
        self._errors.succeeded()

    async def _read(self, client: AsyncModbusTcpClient, request: ReadRequest) -> list[Any]:
        read: Callable[..., Awaitable[Any]] = getattr(client, READ_METHOD[request.table])
        response = await read(request.address, count=request.count, device_id=self.device.unit_id)
        if response.isError():
            code = getattr(response, "exception_code", "?")
            raise ModbusReadError(
                f"exception code {code} reading {request.count} {request.table.value} "
                f"at {request.address}"
            )
        words: list[Any] = response.bits if request.table in BIT_TABLES else response.registers
        return words

    def _fail(self, what: str, error: BaseException | str) -> None:
        self.state.errors += 1
        self.state.connected = False
        # After an outage downstream should see every value again, not only later changes.
        self._last.clear()
        report(self._errors, what, error)
