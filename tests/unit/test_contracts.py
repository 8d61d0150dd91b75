from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from plantmesh.contracts import (
    STATUS_BAD_SENSOR_FAILURE,
    AssetPath,
    DecodeError,
    Quality,
    Reading,
    ReadingBatch,
    decode,
    encode,
)

TS = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ASSET = AssetPath(plant="plant-a", area="press-shop", line="line1", machine="press-01")


def batch(**overrides: object) -> ReadingBatch:
    reading = Reading(
        asset=ASSET, signal="bearing_temp", value=71.5, unit="degC", source_ts=TS, gateway_ts=TS
    )
    fields: dict[str, object] = {
        "gateway_id": "gw-a1",
        "session_id": "s1",
        "seq": 7,
        "sent_at": TS,
        "readings": [reading],
    }
    fields.update(overrides)
    return ReadingBatch.model_validate(fields)


def test_batch_round_trips_through_json() -> None:
    original = batch()
    decoded = decode(ReadingBatch, encode(original))
    assert decoded == original
    assert decoded.readings[0].series_key == "plant-a/press-shop/line1/press-01/bearing_temp"
    assert decoded.schema_version == 1


def test_decode_names_the_bad_field_and_why() -> None:
    payload = json.loads(encode(batch()))
    payload["readings"][0]["value"] = [1, 2]
    with pytest.raises(DecodeError) as info:
        decode(ReadingBatch, json.dumps(payload))
    assert info.value.reason == "schema_mismatch"
    assert any(line.startswith("readings[0].value") for line in info.value.details)


def test_nan_and_infinity_are_rejected() -> None:
    raw = encode(batch()).replace(b"71.5", b"NaN")
    with pytest.raises(DecodeError) as info:
        decode(ReadingBatch, raw)
    assert "readings[0].value" in str(info.value)


def test_malformed_json_has_its_own_reason() -> None:
    with pytest.raises(DecodeError) as info:
        decode(ReadingBatch, b'{"gateway_id": ')
    assert info.value.reason == "malformed_json"


def test_unknown_keys_and_naive_timestamps_are_rejected() -> None:
    payload = json.loads(encode(batch()))
    payload["surprise"] = 1
    payload["readings"][0]["source_ts"] = "2026-01-01T12:00:00"
    with pytest.raises(DecodeError) as info:
        decode(ReadingBatch, json.dumps(payload))
    text = str(info.value)
    assert "surprise" in text
    assert "readings[0].source_ts" in text
    assert "timezone" in text


def test_empty_batch_and_negative_sequence_are_rejected() -> None:
    with pytest.raises(ValueError, match="readings"):
        batch(readings=[])
    with pytest.raises(ValueError, match="seq"):
        batch(seq=-1)


def test_bad_asset_segment_is_rejected() -> None:
    with pytest.raises(ValueError, match="machine"):
        AssetPath(plant="a", area="b", line="c", machine="has/slash")
    assert AssetPath.parse("a/b/c/d").key == "a/b/c/d"
    with pytest.raises(ValueError, match="plant/area/line/machine"):
        AssetPath.parse("a/b/c")


@pytest.mark.parametrize(
    ("code", "quality"),
    [
        (0, Quality.GOOD),
        (0x40000000, Quality.UNCERTAIN),
        (0x808B0000, Quality.BAD),
        (0x80050000, Quality.BAD),
    ],
)
def test_quality_follows_opc_ua_severity_bits(code: int, quality: Quality) -> None:
    assert Quality.from_status_code(code) is quality


def test_numbers_decode_as_float_and_booleans_stay_boolean() -> None:
    payload = json.loads(encode(batch()))
    payload["readings"][0]["value"] = 3
    payload["readings"].append(dict(payload["readings"][0], signal="running", value=True))
    decoded = decode(ReadingBatch, json.dumps(payload))
    assert decoded.readings[0].value == 3.0
    assert isinstance(decoded.readings[0].value, float)
    assert decoded.readings[1].value is True


BAD_TS = "2026-01-01T12:00:00Z"


def _raw_reading(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "asset": ASSET.model_dump(),
        "signal": "bearing_temp",
        "source_ts": BAD_TS,
        "gateway_ts": BAD_TS,
    }
    fields.update(changes)
    return fields


@pytest.mark.parametrize("placeholder", [None, 0, 0.0, "", False])
def test_a_bad_reading_carries_no_value(placeholder: object) -> None:
    """Bad means no value: a placeholder beside a Bad status is dropped, the status kept."""
    raw = _raw_reading(quality="bad", status_code=STATUS_BAD_SENSOR_FAILURE, value=placeholder)
    reading = decode(Reading, json.dumps(raw))
    assert reading.value is None
    assert (reading.quality, reading.status_code) == (Quality.BAD, STATUS_BAD_SENSOR_FAILURE)
    wire = json.loads(encode(reading))
    assert "value" not in wire
    assert decode(Reading, json.dumps(wire)) == reading


def test_a_bad_reading_may_leave_the_value_out() -> None:
    assert decode(Reading, json.dumps(_raw_reading(quality="bad"))).value is None


@pytest.mark.parametrize("quality", ["good", "uncertain", None])
def test_only_a_bad_reading_goes_without_a_value(quality: str | None) -> None:
    raw = _raw_reading() if quality is None else _raw_reading(quality=quality)
    for missing in (raw, {**raw, "value": None}):
        with pytest.raises(DecodeError, match="value is required unless quality is bad"):
            decode(Reading, json.dumps(missing))


def test_an_uncertain_reading_keeps_its_value() -> None:
    reading = decode(Reading, json.dumps(_raw_reading(quality="uncertain", value=3.5)))
    assert reading.value == 3.5


def test_a_bad_reading_still_needs_a_valid_value_type() -> None:
    with pytest.raises(DecodeError, match="value"):
        decode(Reading, json.dumps(_raw_reading(quality="bad", value=[1])))
