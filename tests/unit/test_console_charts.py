"""The console's SVG charts: an evidence's points with the limit, zones or band of its rule,
well-formed and accessible SVG, nothing of the data unescaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from alerting.console.charts import (
    HEIGHT,
    Guide,
    evidence_chart,
    guides_of,
    line_chart,
    points_of,
    series_chart,
)
from alerting.console.series import command_of, flux_of, parse

T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def _evidence(params: dict[str, object], values: list[float]) -> dict[str, object]:
    points = [
        {"ts": (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"), "value": v}
        for i, v in enumerate(values)
    ]
    return {"summary": "s", "condition": "c", "points": points, "parameters": params}


def _tree(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def test_a_threshold_evidence_draws_its_points_its_limit_and_where_it_clears() -> None:
    evidence = _evidence({"threshold": 90.0, "direction": "above", "deadband": 2.0}, [85, 91, 95])
    svg = _tree(str(evidence_chart(evidence, "bearing temperature")))
    assert svg.get("role") == "img"
    assert svg.find(f"{SVG}title").text == "bearing temperature"  # type: ignore[union-attr]
    line = svg.find(f"{SVG}polyline")
    assert line is not None
    ys = [float(p.split(",")[1]) for p in line.get("points", "").split()]
    assert len(ys) == 3
    assert ys[0] > ys[1] > ys[2]  # rising values are drawn higher (smaller y)
    guides = {g.get("class"): float(g.get("y1", "nan")) for g in svg.iter(f"{SVG}line")}
    limit, clear = guides["guide limit"], guides["guide clear"]
    assert ys[2] < limit < ys[0]  # 90 lies between 85 and 95
    assert limit < clear  # 88 is below 90: drawn lower
    assert "limit (above) 90" in (svg.find(f"{SVG}desc").text or "")  # type: ignore[union-attr]


def test_each_rule_type_brings_its_own_guides() -> None:
    zones = guides_of({"boundary_a_b": 2.8, "boundary_b_c": 7.1, "boundary_c_d": 11.0})
    assert [g.kind for g in zones] == ["zone-b", "zone-c", "limit"]
    assert (zones[1].low, zones[1].high) == (7.1, 11.0)
    spc = guides_of({"baseline_centre": 10.0, "baseline_sigma": 0.5})
    assert (spc[0].low, spc[0].high) == (8.5, 11.5)
    assert spc[1] == Guide("baseline centre 10", 10.0, kind="centre")
    flat = guides_of({"frozen_value": 4.0, "epsilon": 0.1})
    assert (flat[0].low, flat[0].high) == (3.9, 4.1)
    below = guides_of({"threshold": 5, "direction": "below", "deadband": 1})
    assert [g.low for g in below] == [5.0, 6.0]
    assert guides_of({"rate": 3.0, "window_s": 60}) == []
    assert guides_of({"threshold": "n/a"}) == []


def test_a_band_is_a_rectangle_within_the_plot() -> None:
    evidence = _evidence({"baseline_centre": 10.0, "baseline_sigma": 1.0}, [9, 10, 14])
    svg = _tree(str(evidence_chart(evidence, "spc")))
    [band] = [r for r in svg.iter(f"{SVG}rect") if "band" in (r.get("class") or "")]
    top, height = float(band.get("y", "0")), float(band.get("height", "0"))
    assert top >= 0
    assert height > 0
    assert top + height <= HEIGHT


def test_no_points_says_so_and_bad_points_are_skipped() -> None:
    empty = _tree(str(evidence_chart({"summary": "x"}, "nothing")))
    assert empty.find(f"{SVG}polyline") is None
    assert "no points recorded" in "".join(empty.itertext())
    mixed = {
        "points": [{"ts": "not a time", "value": 1}, {"ts": "2026-12-04T08:00:00Z", "value": 2}]
    }
    assert points_of(mixed) == [(T0, 2.0)]


def test_one_point_or_a_flat_series_still_draws() -> None:
    svg = _tree(str(line_chart([(T0, 5.0)], "one")))
    assert svg.find(f"{SVG}polyline") is not None
    flat = _tree(str(series_chart([(T0, 0.0), (T0 + timedelta(seconds=5), 0.0)], "flat")))
    assert flat.find(f"{SVG}polyline") is not None


def test_text_in_a_chart_is_escaped() -> None:
    markup = str(line_chart([(T0, 1.0)], '<script>alert("x")</script>', unit="<b>"))
    assert "<script>" not in markup
    assert "&lt;script&gt;" in markup
    _tree(markup)  # still well-formed


def test_a_machines_series_query_and_its_command_line() -> None:
    query = flux_of("plantmesh/autogen", 'plant"a', "mill-01", "1h", "1m")
    assert 'r.plant == "plant\\"a"' in query
    assert "aggregateWindow(every: 1m, fn: mean" in query
    assert command_of("plant-a", "mill 01", "temp", "1h", "1m") == (
        "plantmesh query series --signal temp --since 1h --every 1m --plant plant-a "
        "--machine 'mill 01'"
    )
    rows = [
        {"signal": "b", "unit": "C", "_time": "2026-12-04T08:01:00Z", "_value": "2"},
        {"signal": "b", "unit": "C", "_time": "2026-12-04T08:00:00Z", "_value": "1"},
        {"signal": "a", "unit": "", "_time": "2026-12-04T08:00:00Z", "_value": "x"},
    ]
    [found] = parse(rows)
    assert (found.signal, found.unit, [v for _, v in found.points]) == ("b", "C", [1.0, 2.0])
