"""The writer's checks, reading by reading: what goes to the DLQ, with which reason, and what
flows on; and the three tiers (clean, conforming, partial) held to the same outcome."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from ingest.checks.checker import Checked, Checker, Limits, Tier
from ingest.normalize.registry import AssetRegistry
from plantmesh.dead_letters import Rejection
from plantmesh.topics import DlqReason
from tests.support.ingest_checks import REGISTRY, check, payload, raw_reading


def test_good_batch_passes_with_its_lines_and_sequence() -> None:
    result = check(payload())
    assert isinstance(result, Checked)
    assert (result.gateway_id, result.session_id, result.seq, result.received) == ("gw", "s1", 3, 1)
    assert result.batch is not None
    assert result.batch.seq == 3
    assert result.lines[0].startswith("readings,")
    assert result.bad == []
    assert result.changed is False
    assert result.plant == "p1"
    assert result.tier is Tier.CLEAN


@pytest.mark.parametrize(
    "odd",
    [
        raw_reading(value=2**60),  # an integer no float holds exactly
        raw_reading(value=-(2**60)),
    ],
)
def test_a_batch_the_clean_tier_leaves_takes_the_conforming_tier(odd: dict[str, Any]) -> None:
    result = check(payload(raw_reading(), odd))
    assert isinstance(result, Checked)
    assert result.tier is Tier.CONFORMING
    assert (result.bad, len(result.lines)) == ([], 2)


@pytest.mark.parametrize(
    ("value", "reason", "mentions"),
    [
        (b"{not json", DlqReason.MALFORMED_JSON, ""),
        (b"\xff\xfe", DlqReason.MALFORMED_JSON, ""),
        (b"", DlqReason.EMPTY_PAYLOAD, ""),
        (None, DlqReason.EMPTY_PAYLOAD, ""),
        (b"x" * 2_000_000, DlqReason.OVERSIZED, "max_message_bytes"),
        (payload(seq=-1), DlqReason.SCHEMA_MISMATCH, "seq"),
        (payload(readings=[]), DlqReason.SCHEMA_MISMATCH, "readings"),
        (payload(gateway_id="bad id"), DlqReason.SCHEMA_MISMATCH, "gateway_id"),
        (b"[1, 2]", DlqReason.SCHEMA_MISMATCH, ""),
    ],
)
def test_whole_message_rejections(value: bytes | None, reason: str, mentions: str) -> None:
    result = check(value)
    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert mentions in result.detail


# A reading the contract refuses takes the partial tier; one it accepts but the time bounds or
# line protocol refuse is rejected by the conforming tier.
PARTIAL, CONFORMING = Tier.PARTIAL, Tier.CONFORMING


@pytest.mark.parametrize(
    ("bad", "reason", "mentions", "tier"),
    [
        (
            raw_reading(value=None),
            DlqReason.SCHEMA_MISMATCH,
            "readings[1]: Value error, value is required unless quality is bad",
            PARTIAL,
        ),
        (raw_reading(value=None, quality="uncertain"), DlqReason.SCHEMA_MISMATCH, "bad", PARTIAL),
        (raw_reading(value=[1]), DlqReason.SCHEMA_MISMATCH, "readings[1].value", PARTIAL),
        (
            raw_reading(signal="bad signal"),
            DlqReason.SCHEMA_MISMATCH,
            "readings[1].signal",
            PARTIAL,
        ),
        (
            raw_reading(source_ts="2026-01-01T00:00:00"),
            DlqReason.SCHEMA_MISMATCH,
            "timezone",
            PARTIAL,
        ),
        (raw_reading(value=math.nan), DlqReason.NON_FINITE_VALUE, "finite", PARTIAL),
        (raw_reading(value=math.inf), DlqReason.NON_FINITE_VALUE, "finite", PARTIAL),
        (
            raw_reading(source_ts="2027-01-01T00:00:00Z"),
            DlqReason.TIMESTAMP_OUT_OF_RANGE,
            "readings[1]",
            CONFORMING,
        ),
        (
            raw_reading(source_ts="2020-01-01T00:00:00Z"),
            DlqReason.TIMESTAMP_OUT_OF_RANGE,
            "outside",
            CONFORMING,
        ),
        (raw_reading(unit="trailing\\"), DlqReason.UNKNOWN_UNIT, "known unit", CONFORMING),
    ],
)
def test_one_bad_reading_among_good_ones_is_rejected_alone(
    bad: dict[str, Any], reason: str, mentions: str, tier: Tier
) -> None:
    good_first, good_last = raw_reading(value=1.0), raw_reading(value=3.0, signal="speed")
    result = check(payload(good_first, bad, good_last))
    assert isinstance(result, Checked)
    assert result.tier is tier
    assert result.received == 3
    assert result.batch is not None
    assert [(r.signal, r.value) for r in result.batch.readings] == [("temp", 1.0), ("speed", 3.0)]
    assert len(result.lines) == 2
    assert result.changed is True
    [rejected] = result.bad
    assert rejected.index == 1
    assert rejected.rejection.reason == reason
    assert mentions in rejected.rejection.detail
    # The DLQ entry: the envelope with only the bad reading, as it arrived.
    entry = json.loads(rejected.value.replace(b"NaN", b"null").replace(b"Infinity", b"null"))
    assert (entry["gateway_id"], entry["seq"]) == ("gw", 3)
    assert len(entry["readings"]) == 1
    assert entry["readings"][0]["signal"] == bad["signal"]


def test_a_string_nan_is_text_not_a_number() -> None:
    result = check(payload(raw_reading(value="NaN")))
    assert isinstance(result, Checked)
    assert result.bad == []


def test_a_batch_of_only_bad_readings_still_counts_as_received() -> None:
    result = check(payload(raw_reading(value=None), raw_reading(value=math.nan)))
    assert isinstance(result, Checked)
    assert result.batch is None
    assert result.received == 2
    assert sorted(b.rejection.reason for b in result.bad) == [
        DlqReason.NON_FINITE_VALUE,
        DlqReason.SCHEMA_MISMATCH,
    ]


def test_time_bounds_are_configurable_and_can_be_off() -> None:
    old = payload(raw_reading(source_ts="2020-01-01T00:00:00Z"))
    strict = Checker(Limits(max_past_s=60))
    off = Checker(Limits(max_past_s=None, max_future_s=None))
    assert isinstance(result := check(old, strict), Checked)
    assert result.bad
    assert isinstance(result := check(old, off), Checked)
    assert not result.bad


def test_registry_normalizes_and_rejects_unknown_machines() -> None:
    checker = Checker(Limits(), AssetRegistry.load(REGISTRY))
    us = {"plant": "plant-us", "area": "a", "line": "l", "machine": "PRS_1"}
    result = check(
        payload(
            raw_reading(asset=us, signal="BRG_TEMP_F", value=212.0),
            raw_reading(asset={**us, "machine": "GHOST"}, signal="BRG_TEMP_F", value=1.0),
            raw_reading(asset={**us, "plant": "atlantis"}),
        ),
        checker,
    )
    assert isinstance(result, Checked)
    assert result.batch is not None
    [reading] = result.batch.readings
    assert (reading.signal, reading.unit, reading.value) == ("bearing_temp", "degC", 100.0)
    assert "signal=bearing_temp" in result.lines[0]
    assert [(b.index, b.rejection.reason) for b in result.bad] == [
        (1, "unknown_machine"),
        (2, "unknown_plant"),
    ]
