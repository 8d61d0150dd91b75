"""RFC 3339 text to integer nanoseconds since the epoch, exactly, without datetime objects.

The writer's hot path needs each reading's timestamp as an integer for its line-protocol line,
and building a datetime only to take it apart again costs more than the rest of the reading.
This parser knows one form only, the one every plantmesh gateway sends:
`YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|±HH:MM)`. Anything else gives None, and the caller falls back to
the contract's own validation, so whatever is accepted here the contract accepts with the same
instant (tests/unit/test_ingest_timestamps.py checks that with hypothesis).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime

_SECONDS_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_CACHE_SIZE = 100_000
_FRACTION_SCALE: list[int] = [10 ** (9 - n) for n in range(10)]  # fraction digits -> ns per unit

# Every offset in the accepted form, to its seconds east of UTC.
_ZONES: dict[str, int] = {"Z": 0}
for _hours in range(24):
    for _minutes in range(60):
        _east = _hours * 3600 + _minutes * 60
        _ZONES[f"+{_hours:02}:{_minutes:02}"] = _east
        _ZONES[f"-{_hours:02}:{_minutes:02}"] = -_east

# Readings of one batch share their second, and a gateway's clock resolution repeats the same
# fractions: each part is worked out once. Only valid parts are ever cached, so callers may look
# both up directly (HEAD_NS[text[:19]] + TAIL_NS[text[19:]]) and call rfc3339_ns on a miss.
HEAD_NS: dict[str, int] = {}
"""`YYYY-MM-DDTHH:MM:SS` -> epoch nanoseconds (read as UTC)."""
TAIL_NS: dict[str, int] = {}
"""`[.f{1,6}](Z|±HH:MM)` -> nanoseconds to add to the head's (fraction minus offset)."""


def _head_ns(text: str) -> int | None:
    """Epoch nanoseconds of `YYYY-MM-DDTHH:MM:SS` read as UTC, or None when it is no such time."""
    if not _SECONDS_FORM.fullmatch(text):
        return None
    try:
        moment = datetime(
            int(text[0:4]),
            int(text[5:7]),
            int(text[8:10]),
            int(text[11:13]),
            int(text[14:16]),
            int(text[17:19]),
        )
    except ValueError:  # month 13, 24:00:00, a leap second, year 0...
        return None
    days = moment.toordinal() - _EPOCH_ORDINAL
    seconds = days * 86_400 + moment.hour * 3600 + moment.minute * 60 + moment.second
    return seconds * 1_000_000_000


def _tail_ns(tail: str) -> int | None:
    zone_at = len(tail) - 1 if tail[-1:] == "Z" else len(tail) - 6
    east = _ZONES.get(tail[zone_at:]) if zone_at >= 0 else None
    if east is None:
        return None
    if zone_at == 0:
        return -east * 1_000_000_000
    digits = tail[1:zone_at]
    if tail[0] != "." or not 1 <= len(digits) <= 6 or not (digits.isascii() and digits.isdigit()):
        return None
    return int(digits) * _FRACTION_SCALE[len(digits)] - east * 1_000_000_000


def _cached(cache: dict[str, int], part: str, work_out: Callable[[str], int | None]) -> int | None:
    value = cache.get(part)
    if value is None:
        value = work_out(part)
        if value is not None:
            if len(cache) >= _CACHE_SIZE:
                cache.clear()  # a replay over months, or microsecond clocks: start over
            cache[part] = value
    return value


def rfc3339_ns(text: object) -> int | None:
    """Nanoseconds since the epoch of `text`, or None when it is not in the one known form."""
    if text.__class__ is not str:
        return None
    assert isinstance(text, str)
    head = _cached(HEAD_NS, text[:19], _head_ns)
    tail = _cached(TAIL_NS, text[19:], _tail_ns) if head is not None else None
    if head is None or tail is None:
        return None
    return head + tail
