"""The agent's block decoding of register answers gives exactly what pymodbus' own does, and
refuses what it refuses."""

from __future__ import annotations

import random

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
)

from edge_agent.sources.modbus_responses import (
    HoldingRegistersResponse,
    InputRegistersResponse,
    decode_blocks,
)

PAIRS = [
    (ReadHoldingRegistersResponse, HoldingRegistersResponse),
    (ReadInputRegistersResponse, InputRegistersResponse),
]


@pytest.mark.parametrize(("stock", "ours"), PAIRS)
def test_every_answer_decodes_as_pymodbus_decodes_it(
    stock: type[ReadHoldingRegistersResponse], ours: type[ReadHoldingRegistersResponse]
) -> None:
    rng = random.Random(7)
    for count in range(0, 251):  # odd counts too: the last byte is dropped by both
        for extra in (0, 1, 5):
            data = bytes([count]) + rng.randbytes(count + extra)
            theirs, mine = stock(), ours()
            if count >= len(data):
                with pytest.raises(ModbusIOException):
                    theirs.decode(data)
                with pytest.raises(ModbusIOException):
                    mine.decode(data)
                continue
            theirs.decode(data)
            mine.decode(data)
            assert mine.registers == theirs.registers
            assert mine.function_code == theirs.function_code


def test_a_byte_count_past_the_packet_is_refused_with_its_function_code() -> None:
    with pytest.raises(ModbusIOException) as refused:
        HoldingRegistersResponse().decode(bytes([10, 0, 1]))
    assert "byte_count 10" in str(refused.value)


async def test_the_clients_decoder_takes_the_block_decoding() -> None:
    client = decode_blocks(AsyncModbusTcpClient("127.0.0.1", port=1))
    decoder = client.ctx.framer.decoder
    for function_code, ours in ((3, HoldingRegistersResponse), (4, InputRegistersResponse)):
        frame = bytes([function_code, 4, 0, 1, 0xFF, 0xFE])
        answer = decoder.decode(frame)
        assert isinstance(answer, ours)
        assert answer.registers == [1, 0xFFFE]
    client.close()
