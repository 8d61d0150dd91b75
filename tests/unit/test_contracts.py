from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from plantmesh.contracts import (
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
