"""Turning a device profile into as few Modbus requests as possible, and their answers back into
values.

Every request costs a round trip (often over a slow serial gateway), so registers of the same table
that sit close together are read in one request, gaps included, up to the protocol's limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from plantmesh.modbus_profile import (
    DeviceProfile,
    InexactValueError,
    RegisterSpec,
    Table,
    decode_registers,
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
    request: ReadRequest, words: list[int] | list[bool]
) -> list[tuple[RegisterSpec, Decoded]]:
    """Each spec's engineering value from the answer to `request` (floats may be non-finite:
    the caller decides what to do with a register holding NaN)."""
    if len(words) < request.count:
        raise ValueError(
            f"{request.table.value} read at {request.address} returned {len(words)} values, "
            f"expected {request.count}"
        )
    values: list[tuple[RegisterSpec, Decoded]] = []
    for spec, offset in zip(request.specs, request.offsets, strict=True):
        if request.table in BIT_TABLES:
            values.append((spec, bool(words[offset])))
            continue
        registers = [int(w) for w in words[offset : offset + spec.width]]
        try:
            values.append((spec, decode_registers(spec, registers, exact=True)))
        except InexactValueError as exc:
            values.append((spec, OutOfRange(str(exc))))
    return values
