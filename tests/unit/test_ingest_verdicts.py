"""One contract, one behaviour: a table of lenient, extreme and odd inputs goes through the quick
path (the clean tier first) and the full path (the contract's pydantic validation), and both give
the same verdict; the contract model itself agrees on what it accepts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from ingest.checks.checker import Checked, Checker, Limits
from plantmesh.contracts import SEQ_MAX, STATUS_BAD_SENSOR_FAILURE, ReadingBatch
from plantmesh.dead_letters import Rejection
from plantmesh.topics import DlqReason

NOW = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
TS = "2026-01-01T00:00:00Z"
NO_TIME_BOUNDS = Limits(max_past_s=None, max_future_s=None)


def reading(**changes: Any) -> dict[str, Any]:
    base = {
        "asset": {"plant": "p1", "area": "a", "line": "l", "machine": "m1"},
        "signal": "temp",
        "value": 1.5,
        "unit": "degC",
        "status_code": 0,
        "quality": "good",
        "source_ts": TS,
        "gateway_ts": TS,
    }
    return base | changes


def batch(*readings: dict[str, Any], **changes: Any) -> bytes:
    base = {"gateway_id": "gw", "session_id": "s1", "seq": 5, "sent_at": TS}
    return json.dumps(base | changes | {"readings": list(readings or [reading()])}).encode()


def _without_value(reading: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in reading.items() if key != "value"}


SCHEMA = DlqReason.SCHEMA_MISMATCH
BAD = STATUS_BAD_SENSOR_FAILURE
# (input, verdict): a DlqReason for the whole message, else the reasons of the bad readings.
TABLE: list[tuple[str, bytes, DlqReason | list[DlqReason]]] = [
    ("good", batch(), []),
    ("seq 0", batch(seq=0), []),
    ("seq at the contract's maximum", batch(seq=SEQ_MAX), []),
    ("seq beyond the maximum", batch(seq=SEQ_MAX + 1), SCHEMA),
    ("seq 2**63 - 1", batch(seq=2**63 - 1), SCHEMA),
    ("seq 2**64", batch(seq=2**64), SCHEMA),
    ("seq as text", batch(seq="5000"), SCHEMA),
    ("seq as a float", batch(seq=7.0), SCHEMA),
    ("seq as a bool", batch(seq=True), SCHEMA),
    ("seq negative", batch(seq=-1), SCHEMA),
    ("schema_version 1.0", batch(schema_version=1.0), SCHEMA),
    ("schema_version true", batch(schema_version=True), SCHEMA),
    ("schema_version as text", batch(schema_version="1"), SCHEMA),
    ("sent_at as epoch seconds", batch(sent_at=1767225600), SCHEMA),
    ("sent_at as epoch text", batch(sent_at="1767225600"), SCHEMA),
    ("sent_at with nine fraction digits", batch(sent_at="2026-01-01T00:00:00.123456789Z"), SCHEMA),
    ("sent_at with a space", batch(sent_at="2026-01-01 00:00:00Z"), SCHEMA),
    ("sent_at without seconds", batch(sent_at="2026-01-01T00:00Z"), SCHEMA),
    ("sent_at with six fraction digits", batch(sent_at="2026-01-01T00:00:00.123456+02:00"), []),
    ("status_code as text", batch(reading(status_code="0")), [SCHEMA]),
    ("status_code as a float", batch(reading(status_code=0.0)), [SCHEMA]),
    ("status_code as a bool", batch(reading(status_code=False)), [SCHEMA]),
    ("status_code beyond 32 bits", batch(reading(status_code=2**32)), [SCHEMA]),
    ("source_ts as epoch millis", batch(reading(source_ts=1767225600000)), [SCHEMA]),
    (
        "source_ts with nanoseconds",
        batch(reading(source_ts="2026-01-01T00:00:00.000000001Z")),
        [SCHEMA],
    ),
    ("gateway_ts as epoch float", batch(reading(gateway_ts=1767225600.5)), [SCHEMA]),
    ("source_ts naive", batch(reading(source_ts="2026-01-01T00:00:00")), [SCHEMA]),
    ("value as numeric text is text", batch(reading(value="5000")), []),
    ("value an integer beyond 2**53", batch(reading(value=2**60)), []),
    ("value a bool", batch(reading(value=True)), []),
    ("unit NUL", batch(reading(unit="\x00")), [DlqReason.UNKNOWN_UNIT]),
    ("unit emoji", batch(reading(unit="\U0001f525")), [DlqReason.UNKNOWN_UNIT]),
    ("unit 10 kB", batch(reading(unit="u" * 10_000)), [DlqReason.UNKNOWN_UNIT]),
    ("unit free text", batch(reading(unit="deg C")), [DlqReason.UNKNOWN_UNIT]),
    ("unit an alias", batch(reading(unit="°C")), []),
    ("unit none", batch(reading(unit=None)), []),
    ("quality unknown", batch(reading(quality="great")), [SCHEMA]),
    ("bad without a value", batch(_without_value(reading(quality="bad", status_code=BAD))), []),
    ("bad with value null", batch(reading(quality="bad", status_code=BAD, value=None)), []),
    ("bad with a value (dropped)", batch(reading(quality="bad", status_code=BAD, value=0)), []),
    ("bad with a text placeholder", batch(reading(quality="bad", value="")), []),
    ("bad with a list", batch(reading(quality="bad", value=[1])), [SCHEMA]),
    (
        "bad with NaN",
        batch(reading(quality="bad", value=float("nan"))),
        [DlqReason.NON_FINITE_VALUE],
    ),
    ("good with value null", batch(reading(value=None)), [SCHEMA]),
    ("uncertain with value null", batch(reading(quality="uncertain", value=None)), [SCHEMA]),
    ("default quality without a value", batch(_without_value(reading(quality="good"))), [SCHEMA]),
    ("value an integer beyond 2**53, bad", batch(reading(value=2**60, quality="bad")), []),
    ("one bad reading of two", batch(reading(), reading(seq=1)), [SCHEMA]),
]


def verdict(result: Checked | Rejection) -> DlqReason | list[DlqReason]:
    if isinstance(result, Rejection):
        return result.reason
    return [bad.rejection.reason for bad in result.bad]


@pytest.mark.parametrize(
    ("value", "expected"), [row[1:] for row in TABLE], ids=[r[0] for r in TABLE]
)
def test_both_paths_give_the_contracts_verdict(
    value: bytes, expected: DlqReason | list[DlqReason]
) -> None:
    quick = Checker(NO_TIME_BOUNDS).check(value, NOW)
    full = Checker(NO_TIME_BOUNDS, clean=False).check(value, NOW)
    assert verdict(quick) == verdict(full) == expected
    if isinstance(quick, Checked) and isinstance(full, Checked):
        assert quick.lines == full.lines
    try:
        ReadingBatch.model_validate_json(value)
        contract_accepts = True
    except ValidationError:
        contract_accepts = False
    # The contract refuses exactly what the checks refuse, but for the writer's unit policy.
    assert contract_accepts == (expected == [] or expected == [DlqReason.UNKNOWN_UNIT])


def test_microseconds_are_kept_exactly() -> None:
    value = batch(reading(source_ts="2026-01-01T00:00:00.123456Z"))
    quick = Checker(NO_TIME_BOUNDS).check(value, NOW)
    assert isinstance(quick, Checked)
    assert quick.lines[0].endswith(" 1767225600123456000")


@pytest.mark.parametrize("value", [0, 12.5, "", True, None])
def test_a_bad_reading_is_stored_without_a_value_on_every_path(value: object) -> None:
    """Bad means no value: whatever placeholder a server sent beside a Bad status, the point has
    only status_code and quality, and what flows on (telemetry.normalized) carries no value."""
    message = batch(reading(quality="bad", status_code=STATUS_BAD_SENSOR_FAILURE, value=value))
    for clean in (True, False):
        checked = Checker(NO_TIME_BOUNDS, clean=clean).check(message, NOW)
        assert isinstance(checked, Checked)
        assert checked.bad == []
        [line] = checked.lines
        assert ' status_code=2156593152i,quality="bad" ' in line
        assert "value" not in line.split(" ")[1]
        assert checked.changed is (value is not None)
        [out] = json.loads(checked.to_json())["readings"]
        assert "value" not in out
        assert (out["quality"], out["status_code"]) == ("bad", STATUS_BAD_SENSOR_FAILURE)


def test_an_uncertain_reading_keeps_its_value() -> None:
    message = batch(reading(quality="uncertain", status_code=0x40000000, value=7.25))
    checked = Checker(NO_TIME_BOUNDS).check(message, NOW)
    assert isinstance(checked, Checked)
    assert checked.lines[0].split(" ")[1].startswith("value=7.25,")
    assert checked.changed is False
