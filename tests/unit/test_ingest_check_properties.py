"""The writer's checks as properties (hypothesis): any batch round-trips with its lines, no bytes
make it raise, one corrupted reading is refused alone, and the three tiers (clean, conforming,
partial) decide as the contract does."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.checks.checker import Checked, Checker, Limits, Tier
from ingest.checks.wire_schema import WIRE_BATCH
from ingest.line_protocol import batch_to_lines
from ingest.normalize.registry import AssetRegistry
from plantmesh.contracts import (
    STATUS_BAD_SENSOR_FAILURE,
    STATUS_GOOD,
    STATUS_UNCERTAIN,
    AssetPath,
    Quality,
    Reading,
    ReadingBatch,
    encode,
)
from plantmesh.dead_letters import Rejection
from plantmesh.topics import DlqReason
from tests.support.ingest_checks import NOW, REGISTRY, check, payload, raw_reading

# --- properties -------------------------------------------------------------------------------
names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,10}", fullmatch=True)
values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.text(max_size=20)
)
times = st.datetimes(
    min_value=datetime(2025, 12, 15), max_value=datetime(2026, 1, 1, 0, 15), timezones=st.just(UTC)
)


@st.composite
def readings(draw: st.DrawFn) -> Reading:
    ts = draw(times)
    asset = AssetPath(plant=draw(names), area=draw(names), line=draw(names), machine=draw(names))
    unit = draw(st.one_of(st.none(), st.sampled_from(["degC", "degF", "psi", "bar", "A"])))
    status = draw(st.sampled_from([STATUS_GOOD, STATUS_UNCERTAIN, STATUS_BAD_SENSOR_FAILURE]))
    quality = Quality.from_status_code(status)
    value = None if quality is Quality.BAD else draw(values)
    return Reading(
        asset=asset,
        signal=draw(names),
        value=value,
        unit=unit,
        status_code=status,
        quality=quality,
        source_ts=ts,
        gateway_ts=ts,
    )


@st.composite
def batches(draw: st.DrawFn) -> ReadingBatch:
    return ReadingBatch(
        gateway_id=draw(names),
        session_id="s",
        seq=draw(st.integers(0, 2**40)),
        sent_at=draw(times),
        readings=draw(st.lists(readings(), min_size=1, max_size=5)),
    )


@settings(max_examples=100)
@given(batches())
def test_every_encoded_batch_decodes_to_itself_with_its_lines(batch: ReadingBatch) -> None:
    result = check(encode(batch))
    assert isinstance(result, Checked)
    assert result.bad == []
    assert result.changed is False
    assert result.batch == batch
    assert result.lines == batch_to_lines(batch)


@settings(max_examples=100)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(value: bytes) -> None:
    result = check(value)
    assert isinstance(result, Checked | Rejection)


@settings(max_examples=100)
@given(batches(), st.data())
def test_corrupting_one_reading_rejects_that_reading_only(batch: ReadingBatch, data: Any) -> None:
    obj = json.loads(encode(batch))
    index = data.draw(st.integers(0, len(obj["readings"]) - 1))
    corrupt = obj["readings"][index]
    corrupt["value"] = data.draw(st.sampled_from([None, [], {}, math.nan]))
    if corrupt["value"] is None:  # a Bad reading goes without a value: make it need one
        corrupt["quality"] = data.draw(st.sampled_from(["good", "uncertain"]))
    result = check(json.dumps(obj).encode())
    assert isinstance(result, Checked)
    assert [b.index for b in result.bad] == [index]
    kept = [r for i, r in enumerate(batch.readings) if i != index]
    assert (result.batch.readings if result.batch else []) == kept


registry = AssetRegistry.load(REGISTRY)
us_machines = st.sampled_from(["PRS_1", "PUMP_3"])


@settings(max_examples=100)
@given(
    st.floats(min_value=-1e6, max_value=1e6),
    st.sampled_from([("PRS_1", "BRG_TEMP_F"), ("PRS_1", "SYS_PRESS_PSI"), ("PUMP_3", "FLOW_GPM")]),
    times,
)
def test_normalize_is_idempotent(value: float, where: tuple[str, str], ts: datetime) -> None:
    machine, tag = where
    asset = AssetPath(plant="plant-us", area="a", line="l", machine=machine)
    reading = Reading(asset=asset, signal=tag, value=value, source_ts=ts, gateway_ts=ts)
    once = registry.normalize(reading)
    assert once.signal != tag
    assert once.unit is not None
    assert registry.normalize(once) == once  # already canonical: unchanged
    assert once.source_ts == reading.source_ts
    assert once.asset == reading.asset
    assert timedelta(0) == once.gateway_ts - reading.gateway_ts


def _accepts(validate: Any, value: bytes) -> bool:
    try:
        validate(value)
    except ValueError:
        return False
    return True


odd_values = st.one_of(
    st.none(),
    st.integers(-5, 2**33),
    st.floats(),
    st.text(max_size=8),
    st.booleans(),
    st.just([]),
    st.just({}),
    st.just("2026-01-01T00:00:00"),
    st.just("2026-01-01T00:00:00+02:00"),
    st.just("bad name"),
    st.just("bad"),  # as a quality: a Bad reading, its value dropped; as a value, text
    st.just(1.5),
)


@settings(max_examples=150)
@given(batches(), st.data())
def test_the_conforming_tier_accepts_exactly_what_the_contract_accepts(
    batch: ReadingBatch, data: Any
) -> None:
    obj = json.loads(encode(batch))
    reading = obj["readings"][0]
    where = data.draw(st.sampled_from(["batch", "reading", "asset"]))
    target = {"batch": obj, "reading": reading, "asset": reading["asset"]}[where]
    key = data.draw(st.sampled_from([*sorted(target), "extra", "unit", "quality", "status_code"]))
    if data.draw(st.booleans()):
        target.pop(key, None)
    else:
        target[key] = data.draw(odd_values)
    value = json.dumps(obj).encode()
    conforms = _accepts(WIRE_BATCH.validate_json, value)
    assert conforms == _accepts(ReadingBatch.model_validate_json, value)
    result = check(value, Checker(Limits(max_past_s=None, max_future_s=None)))
    if conforms:
        assert isinstance(result, Checked)
        assert result.tier in (Tier.CLEAN, Tier.CONFORMING)
        # The writer's own policy on top of the contract: `unit` is a tag, known units only.
        if not result.bad:
            assert result.batch == ReadingBatch.model_validate_json(value)
        assert {bad.rejection.reason for bad in result.bad} <= {DlqReason.UNKNOWN_UNIT}
    elif isinstance(result, Checked):  # the envelope holds: the readings at fault are found
        assert result.tier is Tier.PARTIAL
        assert result.bad


odd_times = st.sampled_from(
    [
        "2026-01-01T00:00:00.5Z",
        "2026-01-01T00:00:00.123456+02:00",
        "2026-01-01T00:00:00-00:00",
        "2026-01-01T00:00:00.1234567Z",
        "2026-01-01t00:00:00Z",
        "2026-01-01 00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:60Z",
        "2026-01-01T00:00:00+24:00",
        "2026-01-01T00:00:00+0200",
        "2026-01-01T00:00:00.Z",
        "2026-01-01T00:00:00",
        "\uff12\uff10\uff12\uff16-01-01T00:00:00Z",  # fullwidth digits: str.isdigit says yes
        "2026-01-01T00:00:00.\uff11Z",
    ]
)


def _outcome(result: Checked | Rejection) -> Any:
    if isinstance(result, Rejection):
        return result.reason
    bad = [(b.index, b.rejection.reason) for b in result.bad]
    return bad, result.lines, result.batch, result.received, result.gateway_id, result.seq


@settings(max_examples=300)
@given(batches(), st.data())
def test_the_clean_tier_decides_as_the_contract_does(batch: ReadingBatch, data: Any) -> None:
    """Whatever the clean tier takes, it takes with the contract's data and lines; whatever it
    leaves, the contract's own validation decides: the same outcome either way."""
    obj = json.loads(encode(batch))
    reading = data.draw(st.sampled_from(obj["readings"]))
    where = data.draw(st.sampled_from(["batch", "reading", "asset"]))
    target = {"batch": obj, "reading": reading, "asset": reading["asset"]}[where]
    key = data.draw(st.sampled_from([*sorted(target), "extra", "unit", "quality", "status_code"]))
    change = data.draw(st.sampled_from(["drop", "odd", "time", "none"]))
    if change == "drop":
        target.pop(key, None)
    elif change == "odd":
        target[key] = data.draw(odd_values)
    elif change == "time":
        reading[data.draw(st.sampled_from(["source_ts", "gateway_ts"]))] = data.draw(odd_times)
    value = json.dumps(obj).encode()
    registry_or_none = data.draw(st.sampled_from([None, registry]))
    limits = data.draw(st.sampled_from([Limits(), Limits(max_past_s=None, max_future_s=None)]))
    clean = Checker(limits, registry_or_none).check(value, NOW)
    contract = Checker(limits, registry_or_none, clean=False).check(value, NOW)
    assert _outcome(clean) == _outcome(contract)
    assert not isinstance(contract, Checked) or contract.tier is not Tier.CLEAN


def test_the_clean_tier_takes_the_usual_batch_and_keeps_no_readings() -> None:
    result = check(payload(raw_reading(), raw_reading(value=2, quality="uncertain")))
    assert isinstance(result, Checked)
    assert result.tier is Tier.CLEAN  # an integer a float holds exactly is clean
    assert result.raw
    assert result.source is not None
    assert "readings" not in result.data  # let go of: parsed again only on demand
    assert [r["value"] for r in result.readings] == [1.5, 2]
    assert result.lines == [
        "readings,area=a,line=l,machine=m7,plant=p1,signal=temp value=1.5,status_code=0i,"
        'quality="good" 1767225600000000000',
        "readings,area=a,line=l,machine=m7,plant=p1,signal=temp value=2.0,status_code=0i,"
        'quality="uncertain" 1767225600000000000',
    ]


@settings(max_examples=100)
@given(
    st.floats(min_value=-1e6, max_value=1e6) | st.integers(-1000, 1000),
    st.sampled_from(["BRG_TEMP_F", "SYS_PRESS_PSI", "bearing_temp"]),
    times,
)
def test_the_clean_tier_normalizes_as_the_contract_does(
    value: float, tag: str, ts: datetime
) -> None:
    us = {"plant": "plant-us", "area": "a", "line": "l", "machine": "PRS_1"}
    stamp = ts.isoformat().replace("+00:00", "Z")
    value_ = payload(
        raw_reading(asset=us, signal=tag, value=value, source_ts=stamp),
        raw_reading(asset=us, signal="vibration", value=2.5, quality="bad", status_code=2**31),
    )
    limits = Limits(max_past_s=None, max_future_s=None)
    clean = Checker(limits, registry).check(value_, NOW)
    contract = Checker(limits, registry, clean=False).check(value_, NOW)
    assert _outcome(clean) == _outcome(contract)
    assert isinstance(clean, Checked)
    assert clean.tier is Tier.CLEAN
    assert isinstance(contract, Checked)
    assert contract.tier is Tier.CONFORMING
    assert json.loads(clean.to_json()) == json.loads(contract.to_json())  # key order may differ
