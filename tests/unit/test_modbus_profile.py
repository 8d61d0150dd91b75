from __future__ import annotations

import pytest

from plantmesh.modbus_profile import (
    DataType,
    DeviceProfile,
    Order,
    RegisterSpec,
    Table,
    decode_registers,
    encode_value,
    interpretations,
)


@pytest.mark.parametrize("dtype", [t for t in DataType if t is not DataType.BOOL])
@pytest.mark.parametrize("byte_order", list(Order))
@pytest.mark.parametrize("word_order", list(Order))
def test_every_type_and_order_round_trips(
    dtype: DataType, byte_order: Order, word_order: Order
) -> None:
    spec = RegisterSpec(
        signal="s", address=0, type=dtype, byte_order=byte_order, word_order=word_order
    )
    value = 1234.5 if dtype.value.startswith("float") else 1234.0
    assert decode_registers(spec, encode_value(spec, value)) == value


def test_known_layouts_of_a_float() -> None:
    # 123.456 as IEEE float32 is 0x42F6E979: ABCD.
    abcd = RegisterSpec(signal="s", address=0, type=DataType.FLOAT32)
    cdab = RegisterSpec(signal="s", address=0, type=DataType.FLOAT32, word_order=Order.LITTLE)
    badc = RegisterSpec(signal="s", address=0, type=DataType.FLOAT32, byte_order=Order.LITTLE)
    assert encode_value(abcd, 123.456) == [0x42F6, 0xE979]
    assert encode_value(cdab, 123.456) == [0xE979, 0x42F6]
    assert encode_value(badc, 123.456) == [0xF642, 0x79E9]
    table = interpretations((0xE979, 0x42F6))
    assert table["CDAB (big bytes, little words)"]["float32"] == pytest.approx(123.456, rel=1e-6)


def test_scale_offset_and_clamping() -> None:
    spec = RegisterSpec(signal="t", address=0, type=DataType.INT16, scale=0.1, offset=-40.0)
    assert encode_value(spec, 25.0) == [650]
    assert decode_registers(spec, [650]) == pytest.approx(25.0)
    assert encode_value(spec, 1e9) == [0x7FFF]  # clamped like a PLC conversion would


def test_profile_rejects_overlaps_and_type_table_mismatch() -> None:
    with pytest.raises(ValueError, match="overlaps"):
        DeviceProfile(
            name="p",
            registers=[
                RegisterSpec(signal="a", address=0, type=DataType.FLOAT32),
                RegisterSpec(signal="b", address=1),
            ],
        )
    with pytest.raises(ValueError, match="coils and discrete inputs are bool"):
        RegisterSpec(signal="a", address=0, table=Table.COIL, type=DataType.UINT16)
    profile = DeviceProfile(
        name="p", addressing=1, registers=[RegisterSpec(signal="a", address=40)]
    )
    assert profile.wire_address(profile.registers[0]) == 39
