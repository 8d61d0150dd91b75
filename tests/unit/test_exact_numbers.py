"""Exact numbers: a float32 as its shortest decimal, scaled values without float64 noise, and
64-bit integers no float carries refused, for every Modbus type and byte/word order."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.sources.modbus_plan import OutOfRange, decode_answer, plan_reads
from plantmesh.contracts.numbers import (
    EXACT_INTEGER_MAX,
    exact_integer,
    scaled,
    shortest_float32,
    to_float32,
)
from plantmesh.modbus_profile import (
    DataType,
    DeviceProfile,
    InexactValueError,
    Order,
    RegisterSpec,
    decode_registers,
    encode_value,
    interpretations,
)

ORDERS = [(byte, word) for byte in Order for word in Order]
NUMERIC = [t for t in DataType if t is not DataType.BOOL]


def widened(value: float) -> float:
    """What a float32 register holding `value` gives as a Python float."""
    return to_float32(value)


def test_a_float32_is_published_as_the_number_the_plc_holds() -> None:
    assert widened(123.456) == 123.45600128173828
    assert repr(shortest_float32(widened(123.456))) == "123.456"
    assert repr(shortest_float32(widened(0.1))) == "0.1"
    assert repr(shortest_float32(widened(-3.4e38))) == "-3.4e+38"
    assert repr(shortest_float32(widened(1e-45))) == "1e-45"  # the smallest subnormal


def test_non_finite_values_pass_through_for_the_caller() -> None:
    assert shortest_float32(float("inf")) == float("inf")
    nan = shortest_float32(float("nan"))
    assert nan != nan


def _digits(value: float) -> int:
    mantissa = repr(value).lstrip("-").split("e")[0].replace(".", "").strip("0")
    return len(mantissa)


@settings(max_examples=2000)
@given(st.integers(0, 2**32 - 1))
def test_every_float32_round_trips_with_the_fewest_digits(bits: int) -> None:
    (value,) = struct.unpack("<f", struct.pack("<I", bits))
    if value != value or value in (float("inf"), float("-inf")):
        return
    shortest = shortest_float32(value)
    assert to_float32(shortest) == value  # the same float32
    digits = _digits(shortest)
    for fewer in range(1, digits):  # and no shorter decimal is
        assert to_float32(float(f"{value:.{fewer}g}")) != value


@pytest.mark.parametrize(
    ("value", "scale", "offset", "expected"),
    [
        (3.0, 0.1, 0.0, "0.3"),  # float64 alone says 0.30000000000000004
        (123.456, 0.1, 0.0, "12.3456"),
        (650.0, 0.1, -40.0, "25.0"),
        (7.0, 1.0, 0.0, "7.0"),
        (1.5, 1.0, 0.0, "1.5"),
    ],
)
def test_scale_and_offset_leave_no_float64_noise(
    value: float, scale: float, offset: float, expected: str
) -> None:
    assert repr(scaled(value, scale, offset)) == expected


def test_integers_up_to_2_53_are_exact() -> None:
    assert exact_integer(EXACT_INTEGER_MAX)
    assert exact_integer(-EXACT_INTEGER_MAX)
    assert not exact_integer(EXACT_INTEGER_MAX + 1)
    assert not exact_integer(-EXACT_INTEGER_MAX - 1)


# --- every Modbus type in every byte and word order -----------------------------------------

# A value each type holds exactly, and the text the reading must carry.
EXACT: dict[DataType, tuple[float, str]] = {
    DataType.INT16: (-1234.0, "-1234.0"),
    DataType.UINT16: (65535.0, "65535.0"),
    DataType.INT32: (-2_000_000_001.0, "-2000000001.0"),
    DataType.UINT32: (4_000_000_001.0, "4000000001.0"),
    DataType.INT64: (-(2.0**53), "-9007199254740992.0"),
    DataType.UINT64: (2.0**53, "9007199254740992.0"),
    DataType.FLOAT32: (123.456, "123.456"),
    DataType.FLOAT64: (123.456, "123.456"),
}


def spec(
    dtype: DataType, byte: Order, word: Order, scale: float = 1.0, offset: float = 0.0
) -> RegisterSpec:
    return RegisterSpec(
        signal="s",
        address=0,
        type=dtype,
        byte_order=byte,
        word_order=word,
        scale=scale,
        offset=offset,
    )


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize(("byte", "word"), ORDERS)
def test_every_type_and_order_decodes_exactly(dtype: DataType, byte: Order, word: Order) -> None:
    value, text = EXACT[dtype]
    register = spec(dtype, byte, word)
    words = encode_value(register, value)
    assert repr(decode_registers(register, words)) == text
    assert repr(decode_registers(register, words, exact=True)) == text


@pytest.mark.parametrize("dtype", [DataType.FLOAT32, DataType.INT16, DataType.UINT32])
@pytest.mark.parametrize(("byte", "word"), ORDERS)
def test_scaled_registers_decode_exactly(dtype: DataType, byte: Order, word: Order) -> None:
    register = spec(dtype, byte, word, scale=0.1, offset=-40.0)
    raw = 123.456 if dtype is DataType.FLOAT32 else 653.0
    words = encode_value(register, raw * 0.1 - 40.0)
    expected = "-27.6544" if dtype is DataType.FLOAT32 else "25.3"
    assert repr(decode_registers(register, words)) == expected


@pytest.mark.parametrize("dtype", [DataType.INT64, DataType.UINT64])
@pytest.mark.parametrize(("byte", "word"), ORDERS)
@pytest.mark.parametrize("beyond", [2**53 + 1, 2**63 - 1])
def test_a_64_bit_integer_beyond_2_53_is_refused(
    dtype: DataType, byte: Order, word: Order, beyond: int
) -> None:
    register = spec(dtype, byte, word)
    packed = struct.pack(">q" if dtype is DataType.INT64 else ">Q", beyond)
    words = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, 8, 2)]
    if word is Order.LITTLE:
        words.reverse()
    if byte is Order.LITTLE:
        words = [int.from_bytes(w.to_bytes(2, "big")[::-1], "big") for w in words]
    with pytest.raises(InexactValueError, match="beyond 2\\*\\*53"):
        decode_registers(register, words, exact=True)
    # Tools that only show a register (discover, probe) get the nearest float.
    assert decode_registers(register, words) == float(beyond)
    # The agent's decoding marks it for a Bad reading, the other registers still decode.
    profile = DeviceProfile(
        name="p", registers=[register, RegisterSpec(signal="t", address=4, type=DataType.FLOAT32)]
    )
    [request] = plan_reads(profile)
    answer = decode_answer(request, [*words, *encode_value(profile.registers[1], 2.5)])
    decoded = {decoded_spec.signal: value for decoded_spec, value in answer}
    assert isinstance(decoded["s"], OutOfRange)
    assert "beyond 2**53" in decoded["s"].reason
    assert decoded["t"] == 2.5


def test_a_negative_int64_beyond_2_53_is_refused() -> None:
    register = spec(DataType.INT64, Order.BIG, Order.BIG)
    packed = struct.pack(">q", -(2**53) - 1)
    words = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, 8, 2)]
    with pytest.raises(InexactValueError):
        decode_registers(register, words, exact=True)


def test_commissioning_shows_the_float_the_plc_holds() -> None:
    table = interpretations((0xE979, 0x42F6))  # 123.456 in CDAB
    assert repr(table["CDAB (big bytes, little words)"]["float32"]) == "123.456"
