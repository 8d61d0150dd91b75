"""Register answers decoded a block at a time, through pymodbus' own extension point.

pymodbus decodes a read-registers answer with one `struct.unpack` and one `list.append` per
register: at 10,000 registers a second that loop was a fifth of the agent's CPU. These response
classes replace the stock ones for the agent's clients only (`client.register`, the documented
way to plug a response class into a client's decoder): the same checks and the same `registers`
list, made with one `struct` call for the whole block.
"""

from __future__ import annotations

import struct

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
)


def _registers(data: bytes, function_code: int) -> list[int]:
    """`data` is the byte count, then the registers, big-endian: as pymodbus reads it, a count
    that is odd drops the last byte, and one at or past the end of the packet is refused."""
    if (count := data[0]) >= len(data):
        raise ModbusIOException(
            f"byte_count {count} > length of packet {len(data)}", function_code=function_code
        )
    return list(struct.unpack_from(f">{count // 2}H", data, 1))


class HoldingRegistersResponse(ReadHoldingRegistersResponse):
    def decode(self, data: bytes) -> None:
        self.registers = _registers(data, self.function_code)


class InputRegistersResponse(ReadInputRegistersResponse):
    def decode(self, data: bytes) -> None:
        self.registers = _registers(data, self.function_code)


def decode_blocks(client: AsyncModbusTcpClient) -> AsyncModbusTcpClient:
    """The client, its register answers decoded a block at a time."""
    client.register(HoldingRegistersResponse)
    client.register(InputRegistersResponse)
    return client
