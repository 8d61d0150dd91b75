"""The probe's argument parsing and table (the reading itself is an integration test)."""

from __future__ import annotations

import pytest

from edge_agent.probe import format_interpretations, parse_endpoint


def test_endpoint_parsing() -> None:
    assert parse_endpoint("10.0.0.5:5020") == ("10.0.0.5", 5020)
    assert parse_endpoint("plc.local") == ("plc.local", 502)
    for bad in ("plc:notaport", ":502", "plc:70000"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_endpoint(bad)


def test_table_shows_every_layout_of_a_pair() -> None:
    # 0x3F80 0x0000 is 1.0 as ABCD float32 and 65536 as CDAB int32
    text = format_interpretations((0x3F80, 0x0000), 100, "holding")
    lines = text.splitlines()
    assert lines[0] == "holding registers 100, 101: 0x3F80 0x0000 (16256, 0)"
    rows = {line[:4]: line.split() for line in lines[2:]}
    assert rows["ABCD"][-3:] == ["1", "1065353216", "1065353216"]
    assert rows["CDAB"][-2:] == ["16256", "16256"]
    assert rows["DCBA"][-2:] == ["32831", "32831"]
