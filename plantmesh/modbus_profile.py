"""Modbus device profiles: the register-map format the simulators serve and the edge agent reads.

Byte order (inside each 16-bit register) and word order (which register comes first) are separate
settings, because PLC vendors combine them every way there is: big/big is "ABCD", big bytes with
little words is "CDAB" (common on Schneider and many meters), little/big "BADC", little/little
"DCBA". Values are `raw * scale + offset` in engineering units, exact as plantmesh.contracts.numbers
makes them: a float32 as the shortest decimal that reads back as the same float32, a 64-bit integer
beyond 2**53 (no float holds it) refused by `decode_registers(..., exact=True)`.
"""

from __future__ import annotations

import math
import struct
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from plantmesh.config import ConfigModel, load_config
from plantmesh.contracts.common import Name
from plantmesh.contracts.numbers import exact_integer, scaled, shortest_float32


class Table(StrEnum):
    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"


class DataType(StrEnum):
    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"


class Order(StrEnum):
    BIG = "big"
    LITTLE = "little"


# struct format character and width in 16-bit registers (the agent decodes whole blocks with them)
FORMATS: dict[DataType, tuple[str, int]] = {
    DataType.INT16: ("h", 1),
    DataType.UINT16: ("H", 1),
    DataType.INT32: ("i", 2),
    DataType.UINT32: ("I", 2),
    DataType.INT64: ("q", 4),
    DataType.UINT64: ("Q", 4),
    DataType.FLOAT32: ("f", 2),
    DataType.FLOAT64: ("d", 4),
}


class RegisterSpec(ConfigModel):
    signal: Name
    table: Table = Table.HOLDING
    address: Annotated[int, Field(ge=0, le=65535)]
    type: DataType = DataType.UINT16
    byte_order: Order = Order.BIG
    word_order: Order = Order.BIG
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _check_table_type(self) -> RegisterSpec:
        bit_table = self.table in (Table.COIL, Table.DISCRETE)
        if bit_table != (self.type == DataType.BOOL):
            raise ValueError(
                f"type {self.type.value} does not fit table {self.table.value}: "
                "coils and discrete inputs are bool, registers are numeric"
            )
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        return self

    @property
    def width(self) -> int:
        """How many addresses (registers or bits) the value occupies."""
        return 1 if self.type == DataType.BOOL else FORMATS[self.type][1]


class DeviceProfile(ConfigModel):
    """A device type's register map, shared by every device of that type."""

    name: Name
    description: str | None = None
    # Documentation usually counts registers from 1 ("40001"); the wire counts from 0.
    addressing: Annotated[int, Field(ge=0, le=1)] = 0
    registers: Annotated[list[RegisterSpec], Field(min_length=1)]

    @model_validator(mode="after")
    def _check_unique(self) -> DeviceProfile:
        seen: set[str] = set()
        taken: dict[tuple[Table, int], str] = {}
        for spec in self.registers:
            if spec.signal in seen:
                raise ValueError(f"signal {spec.signal!r} appears twice")
            seen.add(spec.signal)
            for addr in range(spec.address, spec.address + spec.width):
                other = taken.setdefault((spec.table, addr), spec.signal)
                if other != spec.signal:
                    raise ValueError(
                        f"{spec.signal!r} overlaps {other!r} at {spec.table.value} address {addr}"
                    )
        if self.addressing == 1 and any(spec.address == 0 for spec in self.registers):
            raise ValueError("address 0 does not exist with 1-based addressing")
        return self

    def wire_address(self, spec: RegisterSpec) -> int:
        return spec.address - self.addressing


def load_profile(path: Path | str) -> DeviceProfile:
    return load_config(DeviceProfile, path)


def _to_bytes(spec: RegisterSpec, registers: list[int]) -> bytes:
    words = list(registers) if spec.word_order == Order.BIG else list(reversed(registers))
    out = bytearray()
    for word in words:
        pair = word.to_bytes(2, "big")
        out += pair if spec.byte_order == Order.BIG else pair[::-1]
    return bytes(out)


def _to_registers(spec: RegisterSpec, data: bytes) -> list[int]:
    words = []
    for i in range(0, len(data), 2):
        pair = data[i : i + 2] if spec.byte_order == Order.BIG else data[i : i + 2][::-1]
        words.append(int.from_bytes(pair, "big"))
    return words if spec.word_order == Order.BIG else list(reversed(words))


class InexactValueError(ValueError):
    """A register value no reading can carry exactly: a 64-bit integer beyond 2**53."""


def decode_registers(spec: RegisterSpec, registers: list[int], *, exact: bool = False) -> float:
    """Raw registers as read from the wire, in engineering units: a float32 as its shortest
    decimal (123.456, not 123.45600128173828). A 64-bit integer beyond 2**53 comes back as the
    nearest float, or with `exact` raises InexactValueError (what the agent publishes)."""
    fmt, width = FORMATS[spec.type]
    if len(registers) != width:
        raise ValueError(
            f"{spec.signal}: {spec.type.value} needs {width} registers, got {len(registers)}"
        )
    (raw,) = struct.unpack(">" + fmt, _to_bytes(spec, registers))
    if fmt == "f":
        raw = shortest_float32(raw)
    elif exact and width == 4 and fmt != "d" and not exact_integer(raw):
        # No number in the text: the agent logs it once per signal, not once per new value.
        raise InexactValueError(
            f"{spec.type.value} value beyond 2**53: no float carries it exactly "
            "(published as Bad, out of range)"
        )
    return scaled(float(raw), spec.scale, spec.offset)


def encode_value(spec: RegisterSpec, value: float) -> list[int]:
    """Engineering value to raw registers (what a PLC would hold). Integers are rounded and
    clamped to the type's range, as a PLC's conversion would."""
    fmt, _ = FORMATS[spec.type]
    raw = (value - spec.offset) / spec.scale
    packed: bytes
    if spec.type in (DataType.FLOAT32, DataType.FLOAT64):
        packed = struct.pack(">" + fmt, raw)
    else:
        bits = struct.calcsize(fmt) * 8
        signed = fmt.islower()
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        integer = 0 if math.isnan(raw) else max(low, min(high, round(raw)))
        packed = struct.pack(">" + fmt, integer)
    return _to_registers(spec, packed)


def interpretations(registers: tuple[int, int]) -> dict[str, dict[str, float]]:
    """A register pair read every way a 32-bit value can be laid out (for commissioning)."""
    result: dict[str, dict[str, float]] = {}
    for byte_order in Order:
        for word_order in Order:
            label = {
                (Order.BIG, Order.BIG): "ABCD (big bytes, big words)",
                (Order.BIG, Order.LITTLE): "CDAB (big bytes, little words)",
                (Order.LITTLE, Order.BIG): "BADC (little bytes, big words)",
                (Order.LITTLE, Order.LITTLE): "DCBA (little bytes, little words)",
            }[(byte_order, word_order)]
            row = {}
            for dtype in (DataType.FLOAT32, DataType.INT32, DataType.UINT32):
                spec = RegisterSpec(
                    signal="probe",
                    address=0,
                    type=dtype,
                    byte_order=byte_order,
                    word_order=word_order,
                )
                row[dtype.value] = decode_registers(spec, list(registers))
            result[label] = row
    return result
