"""`plantmesh agent probe-modbus`: read one register pair and print every way it can be decoded,
so whoever commissions a device sees at once which byte and word order its map uses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge_agent.errors import ModbusReadError
from edge_agent.sources.modbus_responses import decode_blocks
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
    first, second = await read_block(host, port, unit, address, 2, table, timeout_s)
    return first, second


# Most a single request may ask for (Modbus application protocol, 6.1 to 6.4).
MAX_PER_REQUEST = {"holding": 125, "input": 125, "coil": 2000, "discrete": 2000}
_READS = {
    "holding": "read_holding_registers",
    "input": "read_input_registers",
    "coil": "read_coils",
    "discrete": "read_discrete_inputs",
}


async def read_block(
    host: str, port: int, unit: int, address: int, count: int, table: str, timeout_s: float
) -> list[int]:
    """`count` registers (or bits, as 0/1) from `address` (wire address, 0-based) of `table`
    (holding, input, coil, discrete), in as many requests as the protocol needs."""
    client = decode_blocks(AsyncModbusTcpClient(host, port=port, timeout=timeout_s, retries=0))
    try:
        if not await client.connect():
            raise ModbusReadError(f"cannot connect to {host}:{port}")
        read: Callable[..., Awaitable[Any]] = getattr(client, _READS[table])
        values: list[int] = []
        step = MAX_PER_REQUEST[table]
        for start in range(address, address + count, step):
            n = min(step, address + count - start)
            try:
                response = await read(start, count=n, device_id=unit)
            except (ModbusException, OSError, TimeoutError) as exc:
                raise ModbusReadError(f"no answer from unit {unit}: {exc}") from exc
            if response.isError():
                code = getattr(response, "exception_code", "?")
                raise ModbusReadError(
                    f"unit {unit} answered {table} {start}..{start + n - 1} "
                    f"with exception code {code}"
                )
            words = response.registers if table in ("holding", "input") else response.bits
            values.extend(int(v) for v in words[:n])
        return values
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
