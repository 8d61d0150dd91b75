"""A Modbus device's register image: the four tables of one device filled from its profile.

Each table the profile uses is one contiguous block from its lowest to its highest address, so a
client may read across gaps (they read 0). Bit tables are packed 16 bits to a word, least
significant bit first, starting at a multiple of 16: the layout pymodbus's SimDevice keeps.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from plantmesh.modbus_profile import (
    DataType,
    DeviceProfile,
    RegisterSpec,
    Table,
    decode_registers,
    encode_value,
)

BIT_TABLES = (Table.COIL, Table.DISCRETE)

ServedValue = float | bool
RegisterImage = dict[Table, list[int]]  # per table: the words of its block, from Block.start


@dataclass(frozen=True)
class Block:
    table: Table
    start: int  # first wire address (bit tables: first bit address, a multiple of 16)
    words: int  # length in 16-bit words (bit tables: packed bits)

    @property
    def bits(self) -> bool:
        return self.table in BIT_TABLES


# Integer types a counter wraps in, as a PLC counter of that width does: (bits, signed).
COUNTER_WIDTHS = {
    DataType.INT16: (16, True),
    DataType.UINT16: (16, False),
    DataType.INT32: (32, True),
    DataType.UINT32: (32, False),
    DataType.INT64: (64, True),
    DataType.UINT64: (64, False),
}


def wrap_counter(spec: RegisterSpec, value: float) -> float:
    """A counter's value as its register holds it: the raw count modulo 2**bits (two's
    complement for signed types), where encode_value would clamp a measurement."""
    width = COUNTER_WIDTHS.get(spec.type)
    if width is None:
        return value
    bits, signed = width
    raw = round((value - spec.offset) / spec.scale) % (1 << bits)
    if signed and raw >= 1 << (bits - 1):
        raw -= 1 << bits
    return raw * spec.scale + spec.offset


def served_value(spec: RegisterSpec, value: float) -> tuple[list[int], ServedValue]:
    """The raw registers for `value` and what a client decodes from them: bits are bool,
    registers are the decoded engineering value (equal to `value` only up to the encoding)."""
    if spec.table in BIT_TABLES:
        flag = value >= 0.5
        return [int(flag)], flag
    registers = encode_value(spec, value)
    return registers, decode_registers(spec, registers)


class DeviceLayout:
    def __init__(self, profile: DeviceProfile) -> None:
        self.profile = profile
        self.blocks: dict[Table, Block] = {}
        for table in Table:
            specs = [s for s in profile.registers if s.table == table]
            if not specs:
                continue
            first = min(profile.wire_address(s) for s in specs)
            end = max(profile.wire_address(s) + s.width for s in specs)
            if table in BIT_TABLES:
                first -= first % 16
                self.blocks[table] = Block(table, first, (end - first + 15) // 16)
            else:
                self.blocks[table] = Block(table, first, end - first)

    def span(self, signal: str) -> tuple[Table, int, int]:
        """Where a signal sits on the wire: table, first address, address after the last."""
        spec = next(s for s in self.profile.registers if s.signal == signal)
        first = self.profile.wire_address(spec)
        return spec.table, first, first + spec.width

    def encode(
        self, values: Mapping[str, float], counters: Collection[str] = ()
    ) -> tuple[RegisterImage, dict[str, ServedValue]]:
        """The device's whole image for one set of values, and the value served per signal.
        `counters` wrap at their register type's width instead of clamping."""
        words: RegisterImage = {t: [0] * b.words for t, b in self.blocks.items() if not b.bits}
        bits: dict[Table, list[bool]] = {
            t: [False] * (b.words * 16) for t, b in self.blocks.items() if b.bits
        }
        served: dict[str, ServedValue] = {}
        for spec in self.profile.registers:
            value = values[spec.signal]
            if spec.signal in counters:
                value = wrap_counter(spec, value)
            registers, served[spec.signal] = served_value(spec, value)
            offset = self.profile.wire_address(spec) - self.blocks[spec.table].start
            if spec.table in BIT_TABLES:
                bits[spec.table][offset] = bool(registers[0])
            else:
                words[spec.table][offset : offset + len(registers)] = registers
        for table, flags in bits.items():
            words[table] = pack_bits(flags)
        return words, served


def pack_bits(flags: list[bool]) -> list[int]:
    return [
        sum(1 << i for i, flag in enumerate(flags[start : start + 16]) if flag)
        for start in range(0, len(flags), 16)
    ]
