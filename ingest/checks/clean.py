"""The clean tier: a clean batch in the form gateways send, straight to its lines.

Nearly every batch is clean, and for those building models, or even pydantic-core's dicts with
datetimes, costs more than writing the readings does. Here orjson parses the message into plain
dicts and plain Python holds each field to the contract's constants (plantmesh.contracts: names,
ranges, keys) while building each reading's line-protocol line; timestamps go from text to
nanoseconds directly (ingest.timestamps). About 2 µs a reading, line included.

It accepts a subset of what the contract accepts, with the same data and lines: anything else
(another timestamp form, an integer beyond 2**53, a bad reading, a reading out of the time
bounds or refused by the registry) gives None, and the conforming tier decides and explains. A
reading of Bad quality carries no value (plantmesh.contracts.readings): one that does is taken
with its value dropped, as the contract takes it.
tests/unit/test_ingest_checks.py holds both to the same outcome with hypothesis.
"""

from __future__ import annotations

from typing import Any

import orjson

from ingest.checks.identity import Origin
from ingest.checks.outcome import Checked, Tier
from ingest.checks.series import SeriesPlans, is_name
from ingest.line_protocol import LineProtocolError, value_and_tail_ns
from ingest.normalize.registry import NormalizeError
from ingest.timestamps import HEAD_NS, TAIL_NS, rfc3339_ns
from plantmesh.contracts import (
    QUALITY_VALUES,
    SCHEMA_VERSION,
    SEQ_MAX,
    SESSION_ID_MAX_LENGTH,
    STATUS_CODE_MAX,
    STATUS_GOOD,
    AssetPath,
    Quality,
    Reading,
    ReadingBatch,
)
from plantmesh.dead_letters import Rejection

_BATCH_KEYS = frozenset(ReadingBatch.model_fields)
_BATCH_REQUIRED = frozenset(
    k for k, spec in ReadingBatch.model_fields.items() if spec.is_required()
)
_READING_KEYS = frozenset(Reading.model_fields)
_ALL_READING_KEYS = len(_READING_KEYS)
_ASSET_KEYS = len(AssetPath.model_fields)
_OK, _GOOD = STATUS_GOOD, Quality.GOOD.value  # a reading's defaults
_BAD = Quality.BAD.value
_EXACT = 2**53  # integers up to here become the same float in pydantic and here
_VALUE_TYPES = (float, bool, str)  # an int is a float by then; None only when Bad
_INEXACT = object()  # an integer no float holds exactly: the contract rounds it
_NOT_CLEAN = object()
_GOOD_TAIL = f',status_code={_OK}i,quality="{_GOOD}" '  # after the usual reading's value
_Lines = tuple[list[str], bool]


def check_clean(
    value: bytes, lo_ns: int, hi_ns: int, plans: SeriesPlans, origin: Origin | None = None
) -> Checked | Rejection | None:
    """The batch with one line per reading, or None: not clean, let the contract decide.
    `lo_ns`, `hi_ns`: the source timestamps allowed (Limits.window_ns). A batch that disagrees
    with its `origin` is refused before any of its series is counted."""
    try:
        batch = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not _is_clean_envelope(batch):
        return None
    readings = batch["readings"]
    if origin is not None:
        try:
            rejection = origin.gateway_rejection(batch["gateway_id"]) or origin.plant_rejection(
                reading["asset"]["plant"] for reading in readings
            )
        except (KeyError, TypeError):
            return None
        if rejection is not None:
            return rejection
    found = _lines(readings, lo_ns, hi_ns, plans)
    if found is None:
        return None
    lines, changed = found
    plant = readings[0]["asset"]["plant"]
    if changed:
        return Checked(batch, len(lines), Tier.CLEAN, lines, changed=True, first_plant=plant)
    del batch["readings"]  # let go of them: parsed again from `source` on the rare demand
    return Checked(batch, len(lines), Tier.CLEAN, lines, source=value, first_plant=plant)


def _is_clean_envelope(batch: Any) -> bool:
    if batch.__class__ is not dict or not _BATCH_REQUIRED <= batch.keys() <= _BATCH_KEYS:
        return False
    version = batch.get("schema_version", SCHEMA_VERSION)
    session = batch["session_id"]
    seq = batch["seq"]
    readings = batch["readings"]
    return (
        version.__class__ is int
        and version == SCHEMA_VERSION
        and is_name(batch["gateway_id"])
        and session.__class__ is str
        and 1 <= len(session) <= SESSION_ID_MAX_LENGTH
        and seq.__class__ is int
        and 0 <= seq <= SEQ_MAX
        and rfc3339_ns(batch["sent_at"]) is not None
        and readings.__class__ is list
        and len(readings) > 0
    )


# One loop with everything inline: it runs for every reading the writer sees, where a function
# call costs a few percent; rfc3339_ns too has its cache hits inlined (a timestamp is the
# costliest check of a reading). A missing key or a wrong type anywhere raises KeyError,
# TypeError (a Rejection does not unpack either) or AttributeError: all mean "not clean".
def _lines(readings: list[Any], lo: int, hi: int, plans: SeriesPlans) -> _Lines | None:
    """One line per reading and whether any changed in `readings` (the registry's plan, a Bad
    reading's value dropped), or None."""
    lines: list[str] = []
    append = lines.append
    known, resolve, heads, tails = plans.known.get, plans.resolve, HEAD_NS, TAIL_NS
    changed = False
    try:
        for index, reading in enumerate(readings):
            if len(reading) == _ALL_READING_KEYS:  # all keys present, so none of them extra
                unit, status, quality = reading["unit"], reading["status_code"], reading["quality"]
                number = reading["value"]  # (a KeyError: it is missing, so one key is extra)
            elif reading.keys() <= _READING_KEYS:  # only a dict has keys() in JSON
                unit, number = reading.get("unit"), reading.get("value")
                status, quality = reading.get("status_code", _OK), reading.get("quality", _GOOD)
            else:
                return None
            asset = reading["asset"]
            if len(asset) != _ASSET_KEYS:  # with its four keys present, no other one
                return None
            signal = reading["signal"]
            key = (asset["plant"], asset["area"], asset["line"], asset["machine"], signal, unit)
            plan, series = known(key) or resolve(key)  # type: ignore[misc]  # or a Rejection
            source, gateway = reading["source_ts"], reading["gateway_ts"]
            head, tail = heads.get(source[:19]), tails.get(source[19:])
            source_ns = rfc3339_ns(source) if head is None or tail is None else head + tail
            if (
                source_ns is None
                or not lo <= source_ns <= hi
                or (
                    gateway != source
                    and (heads.get(gateway[:19]) is None or tails.get(gateway[19:]) is None)
                    and rfc3339_ns(gateway) is None
                )
                or status.__class__ is not int
                or not 0 <= status <= STATUS_CODE_MAX
            ):
                return None
            if number.__class__ is int:  # _INEXACT when no float holds it exactly: not clean
                number = reading["value"] = (
                    float(number) if -_EXACT <= number <= _EXACT else _INEXACT
                )
            if (
                plan is None
                and number.__class__ is float
                and status == _OK
                and quality == _GOOD
                and number - number == 0.0  # finite (NaN and infinities take the long way)
            ):
                append(f"{series} value={number!r}{_GOOD_TAIL}{source_ns}")
                continue
            number, dropped = _kept_value(reading, number, quality)
            if number is _NOT_CLEAN:
                return None
            changed |= dropped
            if plan is not None:
                reading = readings[index] = plan.apply(reading)
                number = reading.get("value")
                changed = True
            append(series + value_and_tail_ns(number, status, quality, source_ns))
    except (KeyError, TypeError, AttributeError, NormalizeError, LineProtocolError):
        return None
    return lines, changed


def _kept_value(reading: dict[str, Any], number: Any, quality: Any) -> tuple[Any, bool]:
    """The value a reading off the usual path keeps, and whether it was dropped from `reading`:
    a Bad reading keeps none (plantmesh.contracts.readings), any other needs one. _NOT_CLEAN
    for anything the contract should decide (and explain)."""
    if quality not in QUALITY_VALUES or (
        number is not None
        and (
            number.__class__ not in _VALUE_TYPES
            or (number.__class__ is float and number - number != 0.0)  # NaN, infinities
        )
    ):
        return _NOT_CLEAN, False
    if quality == _BAD:
        if number is None:
            return None, False
        del reading["value"]  # Bad means no value: dropped, as the contract does
        return None, True
    return (_NOT_CLEAN, False) if number is None else (number, False)
