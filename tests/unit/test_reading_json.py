"""The readings' JSON made from precomputed pieces (edge_agent.reading_json) is byte for byte what
the contract's model writes: the wire format did not change when the agent stopped building a
model per reading."""

from __future__ import annotations

import random
import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest

from edge_agent.batching import Batcher
from edge_agent.reading_json import (
    MachineJson,
    float_json,
    good_tail,
    tail,
    timestamp_json,
    value_json,
)
from plantmesh.contracts import (
    STATUS_BAD_OUT_OF_RANGE,
    STATUS_GOOD,
    STATUS_UNCERTAIN,
    AssetPath,
    Quality,
    Reading,
    ReadingBatch,
    encode,
)

ASSET = AssetPath(plant="plant-a", area="hall_2", line="line.1", machine="press-07")
NOW = datetime(2026, 12, 6, 1, 2, 3, 456789, tzinfo=UTC)


def model_json(
    value: float | bool | str | None, status: int, unit: str | None, at: datetime
) -> str:
    return Reading(
        asset=ASSET,
        signal="temp",
        value=value,
        unit=unit,
        status_code=status,
        quality=Quality.from_status_code(status),
        source_ts=at,
        gateway_ts=NOW,
    ).model_dump_json(exclude_none=True)


def floats(count: int, seed: int = 7) -> list[float]:
    """Every magnitude, the edges of repr's positional range, and random bit patterns."""
    rng = random.Random(seed)
    edges = [0.0, -0.0, 1e-4, 9.999e-5, 1e16, 9.999999999999998e15, 5e-324, 1.7976931348623157e308]
    values = edges + [rng.uniform(-1, 1) * 10 ** rng.uniform(-30, 30) for _ in range(count)]
    for _ in range(count):
        bits = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if bits - bits == 0.0:  # finite
            values.append(bits)
    return values


def test_floats_are_written_as_the_model_writes_them() -> None:
    signal = MachineJson(ASSET).signal("temp", None)
    end = good_tail(timestamp_json(NOW), timestamp_json(NOW))
    for value in floats(5_000):
        assert signal.good(float_json(value), end) == model_json(value, STATUS_GOOD, None, NOW)


@pytest.mark.parametrize("unit", [None, "degC", "°C", 'in "quotes"', "m3/h"])
@pytest.mark.parametrize("status", [STATUS_GOOD, STATUS_UNCERTAIN, STATUS_BAD_OUT_OF_RANGE])
@pytest.mark.parametrize(
    "value", [21.5, 0.0, 1e-7, 12345678901234567.0, True, False, "running", 'é\x1f"\\/\u2028']
)
def test_a_reading_is_byte_for_byte_the_models_json(
    value: float | bool | str, status: int, unit: str | None
) -> None:
    signal = MachineJson(ASSET).signal("temp", unit)
    text = signal.reading(value, status, timestamp_json(NOW), timestamp_json(NOW))
    bad = Quality.from_status_code(status) is Quality.BAD
    assert text == model_json(None if bad else value, status, unit, NOW)
    if not bad:
        assert signal.good(value_json(value), tail(status, *[timestamp_json(NOW)] * 2)) == text


@pytest.mark.parametrize(
    "at",
    [
        NOW,
        NOW.replace(microsecond=0),
        NOW.replace(microsecond=1000),
        NOW.astimezone(timezone(timedelta(hours=5, minutes=30))),
        NOW.astimezone(timezone(timedelta(hours=-3))),
    ],
)
def test_timestamps_are_written_as_the_model_writes_them(at: datetime) -> None:
    signal = MachineJson(ASSET).signal("temp", None)
    text = signal.good("1.5", good_tail(timestamp_json(at), timestamp_json(NOW)))
    assert text == model_json(1.5, STATUS_GOOD, None, at)


def test_a_naive_timestamp_is_utc() -> None:
    # asyncua hands OPC UA's UTC timestamps over without a time zone.
    naive = NOW.replace(tzinfo=None)
    assert timestamp_json(naive) == timestamp_json(NOW) == '"2026-12-06T01:02:03.456789Z"'
    assert timestamp_json(naive.replace(microsecond=0)) == '"2026-12-06T01:02:03Z"'


def test_a_batch_of_json_readings_is_what_encoding_the_batch_gives() -> None:
    machine = MachineJson(ASSET)
    times = (timestamp_json(NOW), timestamp_json(NOW))
    texts = [
        machine.signal("temp", "degC").reading(21.5, STATUS_GOOD, *times),
        machine.signal("state", None).reading("running", STATUS_UNCERTAIN, *times),
        machine.signal("count", None).reading(None, STATUS_BAD_OUT_OF_RANGE, *times),
    ]
    batcher = Batcher("gw-1", "0123456789abcdef0123456789abcdef")
    batcher.add_json(machine, texts)
    [made] = batcher.take(NOW)
    expected = ReadingBatch(
        gateway_id="gw-1",
        session_id="0123456789abcdef0123456789abcdef",
        seq=0,
        sent_at=NOW,
        readings=[Reading.model_validate_json(text) for text in texts],
    )
    assert made.payload == encode(expected)
    assert made.readings == 3


def test_models_and_json_of_one_machine_share_its_batch() -> None:
    machine = MachineJson(ASSET)
    batcher = Batcher("gw-1", "0123456789abcdef0123456789abcdef")
    model = Reading.model_validate_json(model_json(1.0, STATUS_GOOD, None, NOW))
    batcher.add(model)
    batcher.add_json(machine, [model_json(2.0, STATUS_GOOD, None, NOW)])
    [made] = batcher.take(NOW)
    assert made.readings == 2
    assert made.asset == ASSET
