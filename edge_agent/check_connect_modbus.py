"""The Modbus part of `check-config --connect`: each device over its own connection, its profile
read with the agent's own requests (plan_reads, read_request, decode_answer). A request the
device refuses is read again register by register, so the table names the register at fault."""

from __future__ import annotations

import asyncio

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge_agent.check_connect import Progress, Row, finite, format_value
from edge_agent.config import ModbusDeviceConfig, ModbusSourceConfig
from edge_agent.errors import ModbusReadError
from edge_agent.sources.modbus import EXCEPTION_STATUS, ModbusExceptionError, read_request
from edge_agent.sources.modbus_plan import OutOfRange, ReadRequest, decode_answer, plan_reads
from edge_agent.sources.modbus_responses import decode_blocks
from plantmesh.contracts import STATUS_GOOD, Quality
from plantmesh.modbus_profile import DataType, DeviceProfile, Order, RegisterSpec

_LAYOUTS = {
    (Order.BIG, Order.BIG): "ABCD",
    (Order.BIG, Order.LITTLE): "CDAB",
    (Order.LITTLE, Order.BIG): "BADC",
    (Order.LITTLE, Order.LITTLE): "DCBA",
}


class _NoAnswerError(Exception):
    """The device stopped answering: the rest of its registers are not tried."""


async def check_modbus(
    source: ModbusSourceConfig, timeout_s: float, progress: Progress
) -> list[Row]:
    rows: list[Row] = []
    for device in source.devices:
        rows += await _check_device(source, device, timeout_s, progress)
    return rows


def spec_type(spec: RegisterSpec) -> str:
    """`float32 CDAB`: the type and, where it spans bytes, the byte/word order it is read in."""
    if spec.type == DataType.BOOL:
        return "bool"
    if spec.width == 1:
        return spec.type.value + ("" if spec.byte_order == Order.BIG else " BA")
    return f"{spec.type.value} {_LAYOUTS[(spec.byte_order, spec.word_order)]}"


def spec_address(device: ModbusDeviceConfig, spec: RegisterSpec) -> str:
    profile = device.device_profile
    wire = profile.wire_address(spec)
    shown = f"unit {device.unit_id} {spec.table.value} {spec.address}"
    return shown if wire == spec.address else f"{shown} (wire {wire})"


def exception_problem(error: ModbusExceptionError) -> str:
    """`illegal data address (exception code 2)`."""
    meaning = EXCEPTION_STATUS.get(error.code, (0, "exception answer"))[1]
    return f"{meaning.split(':')[0]} (exception code {error.code})"


async def _check_device(
    source: ModbusSourceConfig, device: ModbusDeviceConfig, timeout_s: float, progress: Progress
) -> list[Row]:
    profile = device.device_profile

    def row(spec: RegisterSpec, **found: str) -> Row:
        name = f"{device.machine}/{spec.signal}"
        return Row(source.name, name, spec_address(device, spec), spec_type(spec), **found)

    client = decode_blocks(
        AsyncModbusTcpClient(
            source.host, port=source.port, timeout=timeout_s, retries=0, reconnect_delay=0
        )
    )
    try:
        async with asyncio.timeout(timeout_s * 2):
            connected = await client.connect()
    except TimeoutError:
        connected = False
    try:
        if not connected:
            why = await connect_problem(source.host, source.port, timeout_s)
            progress.advance(len(profile.registers))
            return [row(spec, problem=why) for spec in profile.registers]
        rows: dict[str, Row] = {}
        try:
            for request in plan_reads(profile):
                for spec, found in await _read(client, device, profile, request, timeout_s):
                    rows[spec.signal] = row(spec, **found)
                progress.advance(len(request.specs))
        except _NoAnswerError as exc:
            for spec in profile.registers:
                if spec.signal not in rows:
                    rows[spec.signal] = row(spec, problem=str(exc))
                    progress.advance()
        return [rows[spec.signal] for spec in profile.registers]
    finally:
        client.close()


async def _read(
    client: AsyncModbusTcpClient,
    device: ModbusDeviceConfig,
    profile: DeviceProfile,
    request: ReadRequest,
    timeout_s: float,
) -> list[tuple[RegisterSpec, dict[str, str]]]:
    """Each spec of `request` with the cells it gets: its value, or its problem."""
    try:
        words = await _answer(client, device.unit_id, request, timeout_s)
    except ModbusExceptionError as exc:
        if len(request.specs) == 1:
            return [(request.specs[0], _refused(exc))]
        return await _one_by_one(client, device, profile, request, exc, timeout_s)
    except ModbusReadError as exc:  # a gateway: the device behind it cannot be reached
        return [(spec, {"problem": str(exc)}) for spec in request.specs]
    try:
        values = decode_answer(request, words)
    except ValueError as exc:
        return [(spec, {"problem": f"garbled answer: {exc}"}) for spec in request.specs]
    good = Quality.from_status_code(STATUS_GOOD).value
    return [
        (spec, {"value": "-", "quality": Quality.BAD.value, "problem": value.reason})
        if isinstance(value, OutOfRange)
        else (spec, {"value": format_value(value, spec.unit), "quality": good})
        if finite(value)
        else (spec, {"value": format_value(value), "problem": "NaN or infinity (not published)"})
        for spec, value in values
    ]


async def _one_by_one(
    client: AsyncModbusTcpClient,
    device: ModbusDeviceConfig,
    profile: DeviceProfile,
    request: ReadRequest,
    combined: ModbusExceptionError,
    timeout_s: float,
) -> list[tuple[RegisterSpec, dict[str, str]]]:
    """The specs of a refused request, each read alone. If each reads alone, the agent's combined
    read still fails (it spans registers the device does not have): that is the problem shown."""
    found: list[tuple[RegisterSpec, dict[str, str]]] = []
    for spec in request.specs:
        alone = ReadRequest(spec.table, profile.wire_address(spec), spec.width, (spec,), (0,))
        for _, cells in await _read(client, device, profile, alone, timeout_s):
            if not cells.get("problem"):
                cells["problem"] = (
                    f"the agent's read of {request.count} {request.table.value} at "
                    f"{request.address} is refused ({exception_problem(combined)}): "
                    "a gap between signals is not readable"
                )
                cells["quality"] = Quality.from_status_code(combined.status).value
            found.append((spec, cells))
    return found


def _refused(exc: ModbusExceptionError) -> dict[str, str]:
    return {
        "quality": Quality.from_status_code(exc.status).value,
        "problem": exception_problem(exc),
    }


async def _answer(
    client: AsyncModbusTcpClient, unit_id: int, request: ReadRequest, timeout_s: float
) -> list[int] | list[bool]:
    try:
        async with asyncio.timeout(timeout_s * 2):
            return await read_request(client, unit_id, request)
    except (ModbusException, OSError, TimeoutError) as exc:
        raise _NoAnswerError(
            f"no answer from unit {unit_id} within {timeout_s:g}s ({exc})"
        ) from exc


async def connect_problem(host: str, port: int, timeout_s: float) -> str:
    """Why a TCP connection to host:port fails: `connection refused`, timed out, or the
    system's reason."""
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
    except ConnectionRefusedError:
        return "connection refused"
    except TimeoutError:
        return f"no connection within {timeout_s:g}s (timed out)"
    except OSError as exc:
        return f"cannot connect: {exc.strerror or exc}"
    writer.close()
    return "cannot connect (the Modbus client gave up; a plain TCP connection works)"
