"""Exact numbers on the wire: what a source's number becomes in a reading.

Readings carry numbers as JSON numbers, which every reader takes as float64. Two kinds of source
number do not fit that as they are:

- float32 (Modbus float32 registers, OPC UA Float): widened to float64 it prints with digits the
  PLC never held (123.456 becomes 123.45600128173828). `shortest_float32` gives the shortest
  decimal that reads back as the same float32, the number the PLC's own display shows.
- 64-bit integers beyond 2**53: no float64 holds them exactly. `exact_integer` says so, and the
  edge agent publishes such a reading as Bad (STATUS_BAD_OUT_OF_RANGE) instead of a rounded number.

`scaled` applies a register's scale and offset without float64's own noise (3 * 0.1 is
0.30000000000000004 in float64; the reading says 0.3).
"""

from __future__ import annotations

import struct

EXACT_INTEGER_MAX = 2**53
"""The largest magnitude up to which every integer has an exact float64."""

_F32 = struct.Struct("<f")
# A float32 holds every decimal of up to 6 significant digits; whatever rounds back to it at 6
# digits is also its shortest form (shorter decimals sit on the 6-digit grid too, and a float32
# lies far closer to them than half a step of that grid). 9 digits always round-trip. Subnormal
# float32s (below 2**-126) hold fewer digits: for them the search starts at one.
_FIRST_DIGITS, _LAST_DIGITS = 6, 9
_SMALLEST_NORMAL = 2.0**-126
# float64 is exact to 15 significant decimal digits: a scaled value rounded there loses nothing
# its inputs held.
_SCALED_DIGITS = 15


def to_float32(value: float) -> float:
    """`value` rounded to the nearest float32 (as a Python float)."""
    result: float = _F32.unpack(_F32.pack(value))[0]
    return result


def shortest_float32(value: float) -> float:
    """The float whose repr is the shortest decimal that rounds to the same float32 as `value`:
    123.45600128173828 (float32 123.456, widened) gives 123.456. Non-finite values come back
    unchanged (the caller decides what to do with a register holding NaN)."""
    if value != value or value in (float("inf"), float("-inf")):
        return value
    target = to_float32(value)
    first = _FIRST_DIGITS if abs(target) >= _SMALLEST_NORMAL else 1
    for digits in range(first, _LAST_DIGITS):
        candidate = float(f"{target:.{digits}g}")
        if to_float32(candidate) == target:
            return candidate
    return float(f"{target:.{_LAST_DIGITS}g}")


def exact_integer(raw: int) -> bool:
    """A float64 holds `raw` exactly (and so does every JSON reader)."""
    return -EXACT_INTEGER_MAX <= raw <= EXACT_INTEGER_MAX


def scaled(value: float, scale: float, offset: float) -> float:
    """`value * scale + offset` as the decimal it stands for: rounded to the 15 significant
    digits float64 keeps exactly, when scale or offset change anything at all."""
    if scale == 1.0 and offset == 0.0:
        return value
    result = value * scale + offset
    if result != result or result in (float("inf"), float("-inf")):
        return result
    return float(f"{result:.{_SCALED_DIGITS}g}")
