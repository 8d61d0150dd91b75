"""The writer's quickest check: a clean batch in the form gateways send, straight to lines.

orjson parses the message into plain dicts, and plain Python checks each field against what the
ReadingBatch contract asks (types, names, ranges, extra keys) while building each reading's
line-protocol line; timestamps go from text to integer nanoseconds directly (ingest.timestamps).
It accepts a subset of what the contract accepts, with the same data: anything unusual (another
timestamp form, an integer where a float goes, a bad reading, a registry rejection) gives None
and the message takes the contract's own validation instead (ingest.checks.checker), which decides
and explains. tests/unit/test_ingest_validation.py checks with hypothesis that both agree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import orjson

from ingest.line_protocol import LineProtocolError, value_and_tail_ns
from ingest.normalize.registry import NormalizeError, Plan
from ingest.timestamps import HEAD_SECONDS, TAIL_NS, rfc3339_ns
from plantmesh.dead_letters import Rejection

RouteKey = tuple[str, str, str, str, str, str | None]
Route = tuple[Plan | None, str]
RouteResolver = Callable[[RouteKey], Route | Rejection]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # plantmesh.contracts.common.Name
_BATCH_REQUIRED = frozenset({"gateway_id", "session_id", "seq", "sent_at", "readings"})
_BATCH_KEYS = _BATCH_REQUIRED | {"schema_version"}
_READING_KEYS = frozenset(
    {"asset", "signal", "value", "source_ts", "gateway_ts", "unit", "status_code", "quality"}
)
_ALL_READING_KEYS = len(_READING_KEYS)
_NEVER_BEFORE = -(2**80)  # bounds when a time limit is off
_NEVER_AFTER = 2**80
_FLOAT_EXACT = 2**53  # integers up to here become the same float in pydantic and here
_GOOD_TAIL = ',status_code=0i,quality="good" '  # the usual reading's fields after its value
_QUALITIES = frozenset({"good", "uncertain", "bad"})


def _is_name(text: object) -> bool:
    return text.__class__ is str and _NAME.fullmatch(text) is not None


def _key_is_valid(key: RouteKey) -> bool:
    unit = key[5]
    return all(_is_name(part) for part in key[:5]) and (unit is None or unit.__class__ is str)


def quick_check(
    value: bytes,
    lo_ns: int | None,
    hi_ns: int | None,
    routes: dict[RouteKey, Route | Rejection],
    resolve: RouteResolver,
) -> tuple[dict[str, Any], list[str], bool] | None:
    """(the batch as plain data, one line per reading, whether the registry changed readings),
    or None: let the contract decide. `routes` caches `resolve` for keys of valid names."""
    try:
        batch = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if batch.__class__ is not dict or not _BATCH_REQUIRED <= batch.keys() <= _BATCH_KEYS:
        return None
    version = batch.get("schema_version", 1)
    session = batch["session_id"]
    seq = batch["seq"]
    readings = batch["readings"]
    if (
        version.__class__ is not int
        or version != 1
        or not _is_name(batch["gateway_id"])
        or session.__class__ is not str
        or not 1 <= len(session) <= 64
        or seq.__class__ is not int
        or seq < 0
        or rfc3339_ns(batch["sent_at"]) is None
        or readings.__class__ is not list
        or not readings
    ):
        return None
    lines: list[str] = []
    append = lines.append
    heads, tails = HEAD_SECONDS, TAIL_NS
    changed = False
    lo = _NEVER_BEFORE if lo_ns is None else lo_ns
    hi = _NEVER_AFTER if hi_ns is None else hi_ns
    try:  # a missing key or a wrong type anywhere: KeyError, TypeError or AttributeError
        for index, reading in enumerate(readings):
            if len(reading) == _ALL_READING_KEYS:  # all keys present, so none of them extra
                unit = reading["unit"]
                status = reading["status_code"]
                quality = reading["quality"]
            elif reading.keys() <= _READING_KEYS and reading.__class__ is dict:
                unit = reading.get("unit")
                status = reading.get("status_code", 0)
                quality = reading.get("quality", "good")
            else:
                return None
            asset = reading["asset"]
            if len(asset) != 4:  # with its four keys present, no other one
                return None
            key = (
                asset["plant"],
                asset["area"],
                asset["line"],
                asset["machine"],
                reading["signal"],
                unit,
            )
            route = routes.get(key)
            if route is None:
                if not _key_is_valid(key):
                    return None
                route = resolve(key)
            if isinstance(route, Rejection):
                return None
            # rfc3339_ns, its cache hits inlined (this is the costliest check of a reading)
            source = reading["source_ts"]
            gateway = reading["gateway_ts"]
            if source.__class__ is not str or gateway.__class__ is not str:
                return None
            head = heads.get(source[:19])
            tail = tails.get(source[19:])
            source_ns = (
                head * 1_000_000_000 + tail
                if head is not None and tail is not None
                else rfc3339_ns(source)
            )
            if (
                source_ns is None
                or not lo <= source_ns <= hi
                or (
                    gateway != source
                    and (heads.get(gateway[:19]) is None or tails.get(gateway[19:]) is None)
                    and rfc3339_ns(gateway) is None
                )
                or status.__class__ is not int
                or not 0 <= status <= 0xFFFFFFFF
            ):
                return None
            plan, series = route
            number = reading["value"]
            if number.__class__ is int:
                if not -_FLOAT_EXACT <= number <= _FLOAT_EXACT:
                    return None
                number = reading["value"] = float(number)
            if plan is None and number.__class__ is float and status == 0 and quality == "good":
                if not math.isfinite(number):
                    return None
                append(f"{series} value={number!r}{_GOOD_TAIL}{source_ns}")
                continue
            if (
                quality.__class__ is not str
                or quality not in _QUALITIES
                or number.__class__ not in (float, bool, str)
            ):
                return None
            if plan is not None:
                reading = readings[index] = plan.apply(reading)
                number = reading["value"]
                changed = True
            append(series + value_and_tail_ns(number, status, quality, source_ns))
    except (KeyError, TypeError, AttributeError, NormalizeError, LineProtocolError):
        return None
    return batch, lines, changed
