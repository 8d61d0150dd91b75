"""OPC UA variant values as reading values: what a reading carries of what a server sends."""

from __future__ import annotations

import math
from datetime import datetime
from enum import Enum
from typing import Any

from asyncua import ua

from plantmesh.contracts.numbers import exact_integer, shortest_float32


def to_value(raw: Any, variant_type: ua.VariantType | None = None) -> float | bool | str | None:
    """An OPC UA variant value as a Reading value; None for what a reading cannot carry
    (arrays, structures, NaN, an integer beyond 2**53: `inexact`). A Float (float32) becomes
    the shortest decimal that is the same float32 (123.456, not 123.45600128173828)."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, Enum):
        raw = raw.value
    if isinstance(raw, int):
        return float(raw) if exact_integer(raw) else None
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return None
        return shortest_float32(raw) if variant_type is ua.VariantType.Float else raw
    if isinstance(raw, str):
        return raw
    if isinstance(raw, datetime):
        return raw.isoformat()
    if isinstance(raw, ua.LocalizedText):
        return raw.Text
    return None


def inexact(raw: Any) -> str | None:
    """Why a reading cannot carry `raw` exactly (a 64-bit integer beyond 2**53), or None. No
    number in the text: it is logged once per signal, not once per new value."""
    if isinstance(raw, int) and not isinstance(raw, bool) and not exact_integer(raw):
        return "integer beyond 2**53: no float carries it exactly (published as Bad, out of range)"
    return None
