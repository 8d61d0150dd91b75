"""What the agent's sources put in a reading: Bad means no value, a float32 its shortest decimal,
an integer no float carries a Bad reading (the OPC UA source with stand-in data values)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from asyncua import ua

from edge_agent.config import OpcUaSourceConfig
from edge_agent.reading_json import MachineJson, timestamp_json
from edge_agent.sources import decoding
from edge_agent.sources.opcua import OpcUaSource
from edge_agent.sources.opcua_browse import Binding
from edge_agent.sources.opcua_options import ItemOptions
from edge_agent.sources.opcua_values import inexact, to_value
from plantmesh.contracts import (
    STATUS_BAD_OUT_OF_RANGE,
    STATUS_BAD_SENSOR_FAILURE,
    STATUS_GOOD,
    STATUS_UNCERTAIN,
    AssetPath,
    Quality,
    Reading,
    encode,
)

ASSET = AssetPath(plant="p", area="a", line="l", machine="m")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_bad_reading_leaves_the_value_out() -> None:
    now = timestamp_json(NOW)
    text = (
        MachineJson(ASSET).signal("temp", "degC").reading(0.0, STATUS_BAD_SENSOR_FAILURE, now, now)
    )
    reading = Reading.model_validate_json(text)
    assert (reading.value, reading.quality) == (None, Quality.BAD)
    assert '"value"' not in text
    assert encode(reading) == text.encode()


def test_a_good_reading_without_a_value_is_refused() -> None:
    now = timestamp_json(NOW)
    with pytest.raises(ValueError, match="needs a value"):
        MachineJson(ASSET).signal("temp", None).reading(None, STATUS_UNCERTAIN, now, now)


def test_opcua_float_is_its_shortest_decimal_and_double_is_kept() -> None:
    # asyncua hands a Float over as the float32 widened to a Python float.
    assert repr(to_value(123.45600128173828, ua.VariantType.Float)) == "123.456"
    assert to_value(123.45600128173828, ua.VariantType.Double) == 123.45600128173828
    assert to_value(123.456, None) == 123.456


def test_opcua_integers_beyond_2_53_have_no_value_and_a_reason() -> None:
    assert to_value(2**53, ua.VariantType.Int64) == float(2**53)
    assert to_value(2**53 + 1, ua.VariantType.UInt64) is None
    assert to_value(-(2**60), ua.VariantType.Int64) is None
    assert "beyond 2**53" in (inexact(2**60) or "")
    assert inexact(2**53) is None
    assert inexact(True) is None


def _source(readings: list[Reading]) -> tuple[OpcUaSource, Binding]:
    config = OpcUaSourceConfig.model_validate(
        {"type": "opcua", "name": "o", "endpoint": "opc.tcp://h:1", "browse": [{"root": "a"}]}
    )
    options = ItemOptions("subscribe", 100.0, 1, None, 0.0, 1.0)
    binding = Binding(ua.NodeId(1, 1), ASSET, "temp", "degC", options)  # type: ignore[arg-type]
    return OpcUaSource(config, "p", decoding(readings.append)), binding


def _data(value: Any, variant_type: ua.VariantType | None, status: int) -> ua.DataValue:
    variant = ua.Variant(value, variant_type) if variant_type is not None else ua.Variant()
    return ua.DataValue(
        variant,
        ua.StatusCode(ua.UInt32(status)),
        SourceTimestamp=NOW,  # type: ignore[arg-type]  # asyncua's DateTime type
    )


def test_opcua_source_publishes_bad_without_the_servers_placeholder(
    caplog: pytest.LogCaptureFixture,
) -> None:
    readings: list[Reading] = []
    source, binding = _source(readings)
    caplog.set_level(logging.WARNING)
    for value, variant_type, status in [
        (21.5, ua.VariantType.Float, STATUS_GOOD),
        (0.0, ua.VariantType.Float, STATUS_BAD_SENSOR_FAILURE),  # the server's placeholder
        (None, None, STATUS_UNCERTAIN),  # no value: the last good one, not the placeholder
        (2**60, ua.VariantType.UInt64, STATUS_GOOD),
        (2**61, ua.VariantType.UInt64, STATUS_GOOD),
        (123.45600128173828, ua.VariantType.Float, STATUS_GOOD),
    ]:
        source._on_value(binding, _data(value, variant_type, status))
    assert [(r.value, r.status_code, r.quality) for r in readings] == [
        (21.5, STATUS_GOOD, Quality.GOOD),
        (None, STATUS_BAD_SENSOR_FAILURE, Quality.BAD),
        (21.5, STATUS_UNCERTAIN, Quality.UNCERTAIN),
        (None, STATUS_BAD_OUT_OF_RANGE, Quality.BAD),
        (None, STATUS_BAD_OUT_OF_RANGE, Quality.BAD),
        (123.456, STATUS_GOOD, Quality.GOOD),
    ]
    logged = [r.getMessage() for r in caplog.records if "beyond 2**53" in r.getMessage()]
    assert len(logged) == 1  # once per signal, not once per value
    assert "p/a/l/m/temp" in logged[0]
