"""A Modbus register range read every way the agent can decode it: each address as the start of
an int16 ... float64 in each byte/word order that fits in the range (decoded by
plantmesh.modbus_profile, the agent's own decoder), and `--pick ADDR:TYPE[:ORDER][:NAME[:UNIT]]`
turned into the register entries of a device profile."""

from __future__ import annotations

import math

from pydantic import ValidationError

from plantmesh.contracts.decoding import describe_validation_error
from plantmesh.modbus_profile import DataType, Order, RegisterSpec, Table, decode_registers

# The four layouts by the order their bytes A B C D (most significant first) arrive in.
ORDERS: dict[str, tuple[Order, Order]] = {
    "ABCD": (Order.BIG, Order.BIG),
    "CDAB": (Order.BIG, Order.LITTLE),
    "BADC": (Order.LITTLE, Order.BIG),
    "DCBA": (Order.LITTLE, Order.LITTLE),
}
# Narrow to wide, the way register maps list them.
NUMERIC = [
    DataType.INT16,
    DataType.UINT16,
    DataType.INT32,
    DataType.UINT32,
    DataType.FLOAT32,
    DataType.INT64,
    DataType.UINT64,
    DataType.FLOAT64,
]
BIT_TABLES = (Table.COIL, Table.DISCRETE)
_WIDTH = {DataType.INT64: 21, DataType.UINT64: 21, DataType.INT32: 12, DataType.UINT32: 11}


def spec(dtype: DataType, order: str, address: int = 0, signal: str = "discover") -> RegisterSpec:
    byte_order, word_order = ORDERS[order]
    return RegisterSpec(
        signal=signal, address=address, type=dtype, byte_order=byte_order, word_order=word_order
    )


def decoded(values: list[int], offset: int, dtype: DataType, order: str) -> float | None:
    """The value starting at `values[offset]`, None if it runs past the range read."""
    layout = spec(dtype, order)
    if offset + layout.width > len(values):
        return None
    return decode_registers(layout, values[offset : offset + layout.width])


def format_range(
    values: list[int], start: int, table: Table, unit: int, types: list[DataType] | None = None
) -> str:
    end = start + len(values) - 1
    if table in BIT_TABLES:
        lines = [f"{table.value} {start}..{end} of unit {unit} (wire addresses, 0-based)"]
        lines += [f"{start + i:<7}{v}" for i, v in enumerate(values)]
        return "\n".join(lines)
    shown = types or NUMERIC
    lines = [
        f"{table.value} registers {start}..{end} of unit {unit} (wire addresses, 0-based); "
        "a value that would run past the range is '-'",
        f"{'addr':<7}{'raw':<8}{'order':<6}" + "".join(_cell(t.value, t) for t in shown),
    ]
    for i, raw in enumerate(values):
        for n, order in enumerate(ORDERS):
            prefix = f"{start + i:<7}0x{raw:04X}  " if n == 0 else " " * 15
            cells = "".join(_cell(_text(decoded(values, i, t, order), t), t) for t in shown)
            lines.append(f"{prefix}{order:<6}{cells}".rstrip())
    return "\n".join(lines)


def _cell(text: str, dtype: DataType) -> str:
    return f"{text:>{_WIDTH.get(dtype, 14)}} "


def _text(value: float | None, dtype: DataType) -> str:
    if value is None:
        return "-"
    if dtype in (DataType.FLOAT32, DataType.FLOAT64) or not math.isfinite(value):
        return f"{value:.7g}"
    return str(int(value))


def parse_types(text: str) -> list[DataType]:
    """`--types int32,float32`."""
    out: list[DataType] = []
    for name in (part.strip() for part in text.split(",") if part.strip()):
        try:
            dtype = DataType(name)
        except ValueError:
            raise ValueError(
                f"unknown type {name!r}: expected some of {', '.join(t.value for t in NUMERIC)}"
            ) from None
        if dtype == DataType.BOOL:
            raise ValueError("bool is for coils and discrete inputs (--table coil|discrete)")
        out.append(dtype)
    return out


def parse_pick(text: str, table: Table) -> RegisterSpec:
    """`ADDR:TYPE[:ORDER][:NAME[:UNIT]]`, e.g. `2:float32:CDAB:level:m` or `0:uint16:speed:rpm`
    (`ADDR:bool[:NAME]` on coils and discrete inputs). The name defaults to the table, address
    and type; the order to ABCD."""
    parts = text.split(":")
    if len(parts) < 2 or not parts[0].isdigit():
        raise ValueError(f"--pick {text!r}: expected ADDR:TYPE[:ORDER][:NAME[:UNIT]]")
    address, type_name, rest = int(parts[0]), parts[1], parts[2:]
    order = rest.pop(0).upper() if rest and rest[0].upper() in ORDERS else "ABCD"
    try:
        dtype = DataType(type_name)
    except ValueError:
        raise ValueError(
            f"--pick {text!r}: unknown type {type_name!r} "
            f"(expected one of {', '.join(t.value for t in DataType)})"
        ) from None
    name = rest[0] if rest else f"{table.value}_{address}_{dtype.value}"
    unit = rest[1] if len(rest) > 1 else None
    byte_order, word_order = ORDERS[order]
    try:
        return RegisterSpec(
            signal=name,
            table=table,
            address=address,
            type=dtype,
            byte_order=byte_order,
            word_order=word_order,
            unit=unit,
        )
    except ValidationError as exc:
        raise ValueError(f"--pick {text!r}: {'; '.join(describe_validation_error(exc))}") from None


def picked_value(register: RegisterSpec, values: list[int], start: int) -> float:
    """The value a pick has in the range read (the confirmation printed with the fragment)."""
    offset = register.address - start
    if offset < 0 or offset + register.width > len(values):
        raise ValueError(
            f"--pick {register.address}:{register.type.value}: outside the range read "
            f"({start}..{start + len(values) - 1}); widen --start/--count"
        )
    if register.type == DataType.BOOL:
        return float(values[offset])
    return decode_registers(register, values[offset : offset + register.width])
