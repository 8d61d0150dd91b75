"""Turning a device profile into as few Modbus requests as possible, and their answers back into
values.

Every request costs a round trip (often over a slow serial gateway), so registers of the same table
that sit close together are read in one request, gaps included, up to the protocol's limits.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

from plantmesh.contracts.numbers import exact_integer, scaled, shortest_float32
from plantmesh.modbus_profile import (
    FORMATS,
    DeviceProfile,
    Order,
    RegisterSpec,
    Table,
)

# The protocol allows 125 registers / 2000 bits per read; staying a little under the register
# limit keeps clear of gateways that cap lower.
MAX_REGISTERS_PER_READ = 120
MAX_BITS_PER_READ = 2000
# Reading a few unused registers is cheaper than another round trip.
MAX_GAP = 8

BIT_TABLES = (Table.COIL, Table.DISCRETE)


@dataclass(frozen=True)
class ReadRequest:
    table: Table
    address: int
    """Wire address (0-based) of the first register or bit."""
    count: int
    specs: tuple[RegisterSpec, ...]
    offsets: tuple[int, ...]
    """Where each spec's first register or bit sits in the answer."""

    @property
    def end(self) -> int:
        return self.address + self.count

    @cached_property
    def decoder(self) -> BlockDecoder:
        return BlockDecoder(self)


def plan_reads(
    profile: DeviceProfile,
    max_gap: int = MAX_GAP,
    max_registers: int = MAX_REGISTERS_PER_READ,
    max_bits: int = MAX_BITS_PER_READ,
) -> list[ReadRequest]:
    """Coalesce the profile's registers into contiguous reads per table, in address order."""
    requests: list[ReadRequest] = []
    for table in Table:
        limit = max_bits if table in BIT_TABLES else max_registers
        specs = sorted((s for s in profile.registers if s.table == table), key=profile.wire_address)
        group: list[RegisterSpec] = []
        start = end = 0
        for spec in specs:
            address = profile.wire_address(spec)
            spec_end = address + spec.width
            if group and (address - end > max_gap or spec_end - start > limit):
                requests.append(_request(profile, table, start, end, group))
                group = []
            if not group:
                start = address
                end = spec_end
            group.append(spec)
            end = max(end, spec_end)
        if group:
            requests.append(_request(profile, table, start, end, group))
    return requests


def _request(
    profile: DeviceProfile, table: Table, start: int, end: int, specs: list[RegisterSpec]
) -> ReadRequest:
    return ReadRequest(
        table=table,
        address=start,
        count=end - start,
        specs=tuple(specs),
        offsets=tuple(profile.wire_address(s) - start for s in specs),
    )


class OutOfRange(NamedTuple):
    """A register whose value no reading carries exactly (a 64-bit integer beyond 2**53): the
    agent publishes the signal as Bad (STATUS_BAD_OUT_OF_RANGE), without a value."""

    reason: str


Decoded = float | bool | OutOfRange


def decode_answer(
    request: ReadRequest, words: Sequence[int] | Sequence[bool]
) -> list[tuple[RegisterSpec, Decoded]]:
    """Each spec's engineering value from the answer to `request` (floats may be non-finite:
    the caller decides what to do with a register holding NaN)."""
    return list(zip(request.specs, request.decoder.values(words), strict=True))


FORMATS_WIDTH = {"h": 2, "H": 2, "i": 4, "I": 4, "q": 8, "Q": 8, "f": 4, "d": 8}
"""Bytes per struct format character."""


def _converter(spec: RegisterSpec) -> Callable[[float], Decoded] | None:
    """What turns the raw number `struct` gives into the engineering value, exactly as
    plantmesh.modbus_profile.decode_registers(..., exact=True) does; None for a plain 16/32-bit
    integer (just a float)."""
    fmt, _ = FORMATS[spec.type]
    factor, offset = spec.scale, spec.offset
    plain_scale = factor == 1.0 and offset == 0.0
    if fmt == "f":
        return lambda raw: scaled(shortest_float32(raw), factor, offset)
    if fmt in "qQ":
        # No number in the text: the agent logs it once per signal, not once per new value.
        inexact = OutOfRange(
            f"{spec.type.value} value beyond 2**53: no float carries it exactly "
            "(published as Bad, out of range)"
        )
        return lambda raw: (
            scaled(float(raw), factor, offset) if exact_integer(int(raw)) else inexact
        )
    if fmt == "d":  # may be NaN or infinite: never plain
        return lambda raw: scaled(raw, factor, offset)
    return None if plain_scale else lambda raw: scaled(float(raw), factor, offset)


class BlockDecoder:
    """Decodes a whole answer at once: the registers become bytes in two layouts (as read, and
    with the bytes of every register swapped), and each byte/word order of the profile is one
    precompiled `struct` read over one of them. At 10,000 registers a second, decoding value by
    value cost more than pymodbus's own work for the request."""

    __slots__ = ("_as_read", "_converters", "_reads", "_swapped", "bits", "plain", "request")

    def __init__(self, request: ReadRequest) -> None:
        self.request = request
        self.bits = request.table in BIT_TABLES
        count = request.count
        self._as_read = struct.Struct(f">{count}H")
        self._swapped = struct.Struct(f"<{count}H")
        self._converters = [None if self.bits else _converter(s) for s in request.specs]
        self.plain = not self.bits and all(c is None for c in self._converters)
        """Every value is a float made from a 16/32-bit integer: never NaN, never out of range."""
        # (swapped layout?, endianness) -> (spec positions, one struct reading them all)
        groups: dict[tuple[bool, str], list[tuple[int, int, str]]] = {}
        for index, (spec, offset) in enumerate(zip(request.specs, request.offsets, strict=True)):
            if self.bits:
                continue
            fmt, width = FORMATS[spec.type]
            # One register has no word order: its byte order decides alone.
            words = spec.word_order if width > 1 else spec.byte_order
            swapped = spec.byte_order != words
            endian = ">" if words == Order.BIG else "<"
            groups.setdefault((swapped, endian), []).append((index, offset, fmt))
        self._reads: list[tuple[bool, list[int], struct.Struct]] = []
        for (swapped, endian), fields in groups.items():
            layout, at = [endian], 0
            for _, offset, fmt in fields:  # specs are in address order and never overlap
                start = 2 * offset  # registers to bytes
                layout.append(f"{start - at}x{fmt}" if start > at else fmt)
                at = start + FORMATS_WIDTH[fmt]
            self._reads.append(
                (swapped, [index for index, _, _ in fields], struct.Struct("".join(layout)))
            )

    def values(self, words: Sequence[int] | Sequence[bool]) -> list[Decoded]:
        request = self.request
        if len(words) < request.count:
            raise ValueError(
                f"{request.table.value} read at {request.address} returned {len(words)} values, "
                f"expected {request.count}"
            )
        if self.bits:
            return [bool(words[offset]) for offset in request.offsets]
        count = request.count
        raws: list[float] = [0.0] * len(request.specs)
        for swapped, indices, reader in self._reads:
            layout = self._swapped if swapped else self._as_read
            data = layout.pack(*words[:count]) if len(words) != count else layout.pack(*words)
            if len(self._reads) == 1:
                raws = list(reader.unpack_from(data))
                break
            for index, raw in zip(indices, reader.unpack_from(data), strict=True):
                raws[index] = raw
        if self.plain:
            return [float(raw) for raw in raws]
        return [
            float(raw) if convert is None else convert(raw)
            for raw, convert in zip(raws, self._converters, strict=True)
        ]
