from __future__ import annotations

import logging
from datetime import UTC, datetime
from enum import IntEnum

import pytest
from asyncua import ua

from edge_agent.errors import report
from edge_agent.sources.opcua_browse import safe_name
from edge_agent.sources.opcua_values import to_value
from plantmesh.resilience import ErrorLog


def test_report_names_component_step_and_error_once_per_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors = ErrorLog(logging.getLogger("t"), "modbus unit 1")
    with caplog.at_level(logging.INFO, logger="t"):
        assert report(errors, "poll", TimeoutError("no answer"))
        assert not report(errors, "poll", TimeoutError("no answer"))
        assert report(errors, "poll", "refused")
        errors.succeeded()
        assert report(errors, "poll", TimeoutError("no answer"))  # new outage, logged again
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "modbus unit 1: poll: TimeoutError: no answer",
        "modbus unit 1: poll: refused",
        "modbus unit 1 recovered",
        "modbus unit 1: poll: TimeoutError: no answer",
    ]


class Mode(IntEnum):
    AUTO = 2


def test_opcua_values_become_reading_values() -> None:
    assert to_value(True) is True
    assert to_value(3) == 3.0
    assert to_value(ua.Int32(7)) == 7.0
    assert to_value(Mode.AUTO) == 2.0
    assert to_value(2.5) == 2.5
    assert to_value("running") == "running"
    assert to_value(ua.LocalizedText("hot")) == "hot"
    assert to_value(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00+00:00"
    assert to_value(float("nan")) is None
    assert to_value([1, 2]) is None
    assert to_value(None) is None


def test_browse_names_become_safe_names() -> None:
    assert safe_name("press-01") == "press-01"
    assert safe_name("Line 1 (north)") == "Line_1_north_"
    assert safe_name("  ") is None
    assert safe_name("x" * 80) == "x" * 64
