"""`plantmesh agent probe-modbus`: read one register pair and print every way it can be decoded,
so whoever commissions a device sees at once which byte and word order its map uses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge_agent.errors import ModbusReadError
from plantmesh.modbus_profile import interpretations


def parse_endpoint(text: str) -> tuple[str, int]:
    """`HOST:PORT` (PORT defaults to 502)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, 502
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


async def read_pair(
    host: str, port: int, unit: int, address: int, table: str, timeout_s: float
) -> tuple[int, int]:
    """Two registers from `address` (wire address, 0-based) of the holding or input table."""
    client = AsyncModbusTcpClient(host, port=port, timeout=timeout_s, retries=0)
    try:
        if not await client.connect():
            raise ModbusReadError(f"cannot connect to {host}:{port}")
        method = "read_holding_registers" if table == "holding" else "read_input_registers"
        read: Callable[..., Awaitable[Any]] = getattr(client, method)
        try:
            response = await read(address, count=2, device_id=unit)
        except (ModbusException, OSError, TimeoutError) as exc:
            raise ModbusReadError(f"no answer from unit {unit}: {exc}") from exc
        if response.isError():
            code = getattr(response, "exception_code", "?")
            raise ModbusReadError(f"unit {unit} answered with exception code {code}")
        first, second = (int(r) for r in response.registers[:2])
        return first, second
    finally:
        client.close()


def format_interpretations(registers: tuple[int, int], address: int, table: str) -> str:
    first, second = registers
    lines = [
        f"{table} registers {address}, {address + 1}: "
        f"0x{first:04X} 0x{second:04X} ({first}, {second})",
        f"{'layout':<36}{'float32':>18}{'int32':>14}{'uint32':>14}",
    ]
    for label, row in interpretations(registers).items():
        lines.append(
            f"{label:<36}{row['float32']:>18.6g}{int(row['int32']):>14}{int(row['uint32']):>14}"
        )
    return "\n".join(lines)


def probe(
    endpoint: str, unit: int, address: int, table: str = "holding", timeout_s: float = 2.0
) -> str:
    host, port = parse_endpoint(endpoint)
    registers = asyncio.run(read_pair(host, port, unit, address, table, timeout_s))
    return format_interpretations(registers, address, table)
