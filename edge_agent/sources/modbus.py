"""Modbus TCP source: every device is polled by its own task over its own connection.

pymodbus serialises the requests of one connection, so a device that does not answer would hold
up every other device sharing it for a whole timeout per poll. One connection per device keeps a
dead pump from delaying the press next to it (Modbus TCP servers and gateways accept several).

A request the device answers with a Modbus exception code is not a lost poll: as OPC UA servers
and industrial gateways do, that request's signals are published with the last good value the
agent saw and a non-Good status (a signal without one yet is skipped, counted in `unpublished`
and logged), the other requests' values as usual, and the device stays connected. Each exception
answer counts as an error in the source's health and is logged once per kind until every request
answers again.

==========  =========================================  =====================================
code        meaning                                    published as
==========  =========================================  =====================================
1, 2, 3     illegal function / data address / value:   STATUS_BAD (the log line says to
            the profile asks for what the device       check the profile's table, addresses
            does not have (a configuration problem)    and addressing)
4           server device failure (a failed sensor     STATUS_BAD_SENSOR_FAILURE
            or module behind the registers)
5, 6        acknowledge / server device busy: no       STATUS_UNCERTAIN (the last good value
            value this poll, the device is fine        is probably still right)
7, 8, ...   any other code                             STATUS_BAD
10, 11      gateway path unavailable / target device   nothing: the device is unreachable,
            failed to respond                          the poll fails and it is disconnected
                                                       (the gateway's connection is kept)
==========  =========================================  =====================================

No answer, a garbled one or a timeout fails the whole poll and starts a fresh connection.
Quality follows the status code (`Quality.from_status_code`); a Bad reading carries no value
(plantmesh.contracts.readings), an Uncertain one the last good value. A 64-bit register beyond
2**53, which no float carries exactly, is published as Bad (STATUS_BAD_OUT_OF_RANGE), its reason
logged once per signal.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge_agent.config import ModbusDeviceConfig, ModbusSourceConfig
from edge_agent.errors import ModbusReadError, report
from edge_agent.reading_json import (
    MachineJson,
    SignalJson,
    good_tail,
    timestamp_json,
    value_json,
)
from edge_agent.sources import ReadingSink, SourceState
from edge_agent.sources.connection_log import ConnectionLog
from edge_agent.sources.modbus_plan import BIT_TABLES, OutOfRange, ReadRequest, plan_reads
from edge_agent.sources.modbus_responses import decode_blocks
from plantmesh.contracts import (
    STATUS_BAD,
    STATUS_BAD_OUT_OF_RANGE,
    STATUS_BAD_SENSOR_FAILURE,
    STATUS_UNCERTAIN,
    AssetPath,
    SourceHealth,
)
from plantmesh.modbus_profile import Table
from plantmesh.resilience import Backoff, ErrorLog, raise_if_cancelled

log = logging.getLogger(__name__)

READ_METHOD = {
    Table.HOLDING: "read_holding_registers",
    Table.INPUT: "read_input_registers",
    Table.COIL: "read_coils",
    Table.DISCRETE: "read_discrete_inputs",
}

# Modbus exception code -> (status of the request's signals, what it means for the log line).
EXCEPTION_STATUS: dict[int, tuple[int, str]] = {
    1: (STATUS_BAD, "illegal function: the device has no such table, check the profile"),
    2: (
        STATUS_BAD,
        "illegal data address: the device has no such registers, "
        "check the profile's addresses and addressing",
    ),
    3: (STATUS_BAD, "illegal data value: the device refuses this read, check the profile"),
    4: (STATUS_BAD_SENSOR_FAILURE, "server device failure: a sensor or module behind it failed"),
    5: (STATUS_UNCERTAIN, "acknowledge: the device is busy with a long command"),
    6: (STATUS_UNCERTAIN, "server device busy"),
}
UNKNOWN_EXCEPTION = (STATUS_BAD, "exception answer")
# A gateway saying the device behind it cannot be reached: a lost poll, not a sensor fault.
GATEWAY_CODES = frozenset({10, 11})


_Step = tuple[ReadRequest, list[SignalJson], list[str]]
"""One request of the plan with its signals' JSON pieces and names, in the request's order."""


class ModbusExceptionError(ModbusReadError):
    """The device answered one request with an exception code: that request's signals are
    published with a non-Good status; the connection and the other requests are fine."""

    def __init__(self, code: int, request: ReadRequest) -> None:
        self.status, meaning = EXCEPTION_STATUS.get(code, UNKNOWN_EXCEPTION)
        self.code = code
        self.request = request
        super().__init__(
            f"exception code {code} ({meaning}) reading {request.count} {request.table.value} "
            f"at {request.address}"
        )


async def read_request(
    client: AsyncModbusTcpClient, unit_id: int, request: ReadRequest
) -> list[Any]:
    """The registers or bits of one request (also `plantmesh agent check-config --connect`).
    Raises ModbusExceptionError for an exception answer, ModbusReadError for a gateway's."""
    read: Callable[..., Awaitable[Any]] = getattr(client, READ_METHOD[request.table])
    response = await read(request.address, count=request.count, device_id=unit_id)
    if response.isError():
        code = getattr(response, "exception_code", "?")
        if isinstance(code, int) and code not in GATEWAY_CODES:
            raise ModbusExceptionError(code, request)
        raise ModbusReadError(
            f"exception code {code} reading {request.count} {request.table.value} "
            f"at {request.address}"
        )
    words: list[Any] = response.bits if request.table in BIT_TABLES else response.registers
    return words


class Held(NamedTuple):
    """What `DevicePoller._last` holds instead of a plain value when the signal's next reading
    must be published even if it equals `value`, the last good one: it was last published with the
    non-Good `status`, or (None) not since the connection came back. Never equal to a value, so
    the good path needs no extra test."""

    value: float | bool
    status: int | None


def source_link(config: ModbusSourceConfig) -> ConnectionLog:
    return ConnectionLog(log, f"modbus source {config.name} ({config.host}:{config.port})")


class ModbusSource:
    """All devices behind one Modbus TCP endpoint (a PLC, or a gateway to a serial bus)."""

    def __init__(self, config: ModbusSourceConfig, plant: str, sink: ReadingSink) -> None:
        self.config = config
        self.name = config.name
        # One PLC restart is one outage of the source, however many devices it serves.
        link = source_link(config)
        self.devices = [
            DevicePoller(config, device, plant, sink, link) for device in config.devices
        ]

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
        link: ConnectionLog | None = None,
    ) -> None:
        self.source = source
        self.device = device
        self.profile = device.device_profile
        self.asset = AssetPath(
            plant=plant, area=device.area, line=device.line, machine=device.machine
        )
        self.machine = MachineJson(self.asset)
        self._signals = {
            spec.signal: self.machine.signal(spec.signal, spec.unit)
            for spec in self.profile.registers
        }
        self.plan = plan_reads(self.profile)
        # Health names one device: "<source>.<machine>", cut to the 64 characters a Name allows.
        self.state = SourceState(f"{source.name}.{device.machine}"[:64])
        self.polls = 0
        self._sink = sink
        self._last: dict[str, float | bool | Held] = {}
        self.unpublished = 0
        """Non-Good statuses not published: the signal had no good value yet to carry them."""
        # Lost and recovered connections, shared by the source's devices.
        self._link = link or source_link(source)
        self._member = f"unit {device.unit_id} ({device.machine})"
        # Bad values are a profile or PLC-program problem, logged once for the agent's life.
        self._value_errors = ErrorLog(log, f"modbus {self._member}")
        # Exception answers, logged once per kind until every request is answered again.
        self._answers = ErrorLog(
            log, f"modbus {source.host}:{source.port} {self._member} registers"
        )

    @property
    def plan(self) -> list[ReadRequest]:
        return [step[0] for step in self._steps]

    @plan.setter
    def plan(self, requests: list[ReadRequest]) -> None:
        # Per request, in plan order: its signals' JSON pieces and names, looked up once.
        self._steps: list[_Step] = [
            (r, [self._signals[s.signal] for s in r.specs], [s.signal for s in r.specs])
            for r in requests
        ]

    async def run(self) -> None:
        client = decode_blocks(
            AsyncModbusTcpClient(
                self.source.host,
                port=self.source.port,
                timeout=self.source.timeout_s,
                retries=0,  # a missed poll is retried by the next poll, not by piling up requests
                reconnect_delay=0,  # reconnects are ours, with jittered backoff
                name=self.state.name,
            )
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
            # A gateway answered that the device cannot be reached: the connection is fine.
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
        answers: list[tuple[_Step, list[Any]]] = []
        refused: list[ModbusExceptionError] = []
        for step in self._steps:
            try:
                answers.append((step, await self._read(client, step[0])))
            except ModbusExceptionError as exc:
                refused.append(exc)
        self.polls += 1
        times = (timestamp_json(source_ts), timestamp_json(datetime.now(UTC)))
        texts: list[str] = []
        for step, words in answers:
            self._publish_answer(step, words, times, texts)
        if refused:
            self._publish_refused(refused, times, texts)
        else:
            self._answers.succeeded()
        if texts:
            self._sink(self.machine, texts)
        self.state.connected = True
        self.state.seen(len(texts))
        self._link.connected(self._member)

    def _publish_answer(
        self, step: _Step, words: list[Any], times: tuple[str, str], texts: list[str]
    ) -> None:
        request, signals, names = step
        decoder = request.decoder
        values = decoder.values(words)
        end = good_tail(*times)
        if decoder.plain and not self.device.on_change:
            # The common case, a whole block of integers: no value can be NaN or out of range.
            texts.extend(
                [
                    f"{signal.head}{value!r}{signal.unit_part}{end}"
                    for signal, value in zip(signals, values, strict=True)
                ]
            )
            self._last.update(zip(names, cast(list[float], values), strict=True))
            return
        for signal, value in zip(signals, values, strict=True):
            name = signal.signal
            if isinstance(value, float) and not math.isfinite(value):
                self.state.errors += 1
                report(self._value_errors, name, "register holds NaN or infinity")
                continue
            if isinstance(value, OutOfRange):  # Bad, without a value; the reason logged once
                self.state.errors += 1
                report(self._value_errors, name, value.reason)
                self._last.pop(name, None)  # no good value to hold for its next status
                texts.append(signal.reading(None, STATUS_BAD_OUT_OF_RANGE, *times))
                continue
            if self.device.on_change and self._last.get(name) == value:
                continue
            self._last[name] = value
            texts.append(signal.good(value_json(value), end))

    async def _read(self, client: AsyncModbusTcpClient, request: ReadRequest) -> list[Any]:
        return await read_request(client, self.device.unit_id, request)

    def _publish_refused(
        self, refused: list[ModbusExceptionError], times: tuple[str, str], texts: list[str]
    ) -> None:
        """Publish the signals of the requests answered with an exception code: the last good
        value with the code's status."""
        for answer in refused:
            self.state.errors += 1
            report(self._answers, "poll", answer)
            for spec in answer.request.specs:
                self._publish_held(self._signals[spec.signal], answer.status, times, texts)

    def _publish_held(
        self, signal: SignalJson, status: int, times: tuple[str, str], texts: list[str]
    ) -> None:
        last = self._last.get(signal.signal)
        if last is None:
            self.unpublished += 1
            report(self._answers, signal.signal, "no good value yet to publish its status with")
            return
        if isinstance(last, Held):
            if self.device.on_change and last.status == status:
                return  # unchanged: published with this status already
            last = last.value
        self._last[signal.signal] = Held(last, status)
        texts.append(signal.reading(last, status, *times))

    def _fail(self, what: str, error: BaseException | str) -> None:
        self.state.errors += 1
        self.state.connected = False
        # After an outage downstream should see every value again, not only later changes; the
        # last good values stay, for the status of a signal whose sensor fails meanwhile.
        self._last = {
            signal: Held(last.value if isinstance(last, Held) else last, None)
            for signal, last in self._last.items()
        }
        self._link.failed(error, self._member, step=what)
