"""`plantmesh query`: the statements each question turns into, and how answers are printed."""

from __future__ import annotations

import argparse

import pytest

from plantmesh.cli import build_parser
from plantmesh.influxql import Series
from plantmesh.query import flux_for, influxql_for, render_flux, render_influxql


def parse(*argv: str) -> argparse.Namespace:
    args = build_parser(registers=[]).parse_args(["query", *argv])
    if args.bucket is None:
        args.bucket = f"{args.database}/autogen"
    for name in ("plant", "machine", "signal"):
        if not hasattr(args, name):
            setattr(args, name, None)
    return args


def test_last_value_per_machine() -> None:
    text = influxql_for(parse("last", "--plant", "plant-a", "--machine", "press-01"))
    assert text == (
        "SELECT last(value) AS value FROM readings WHERE plant = 'plant-a' AND "
        "machine = 'press-01' GROUP BY plant, machine, signal"
    )


def test_literals_are_escaped() -> None:
    text = influxql_for(parse("last", "--plant", "it's"))
    assert "plant = 'it\\'s'" in text
    flux = flux_for(parse("last", "--plant", 'a"b'))
    assert 'r.plant == "a\\"b"' in flux


def test_series_raw_and_downsampled() -> None:
    raw = influxql_for(parse("series", "--signal", "bearing_temp", "--since", "2h"))
    assert raw.startswith("SELECT value, unit FROM readings WHERE signal = 'bearing_temp'")
    assert "time > now() - 2h" in raw
    trend = influxql_for(parse("series", "--signal", "bearing_temp", "--every", "5m"))
    assert "mean(value) AS mean" in trend
    assert "GROUP BY time(5m), plant, machine fill(none)" in trend
    assert "aggregateWindow(every: 5m, fn: mean" in flux_for(
        parse("series", "--signal", "x", "--every", "5m")
    )


def test_completeness_sums_the_latest_figures_of_each_gateway() -> None:
    text = influxql_for(parse("completeness", "--plant", "plant-a"))
    assert "FROM (SELECT last(batches_expected) AS expected" in text
    assert "WHERE plant = 'plant-a' GROUP BY plant, gateway) GROUP BY plant" in text
    flux = flux_for(parse("--db", "other", "completeness"))
    assert flux.startswith('from(bucket: "other/autogen") |> range(start: -1h)')
    assert '_measurement == "completeness"' in flux


@pytest.mark.parametrize("bad", ["1", "h", "-1h", "1y", "1h; DROP"])
def test_durations_are_checked(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("series", "--signal", "s", f"--since={bad}")
    assert "duration" in capsys.readouterr().err


def test_raw_queries_take_the_text() -> None:
    assert parse("influxql", "SHOW DATABASES").text == "SHOW DATABASES"
    assert parse("flux", "buckets()").text == "buckets()"


def test_influxql_answers_print_as_one_table_with_the_tags_first() -> None:
    series = [
        Series("readings", {"plant": "a", "signal": "temp"}, ["time", "value"], [[0, 1.5]]),
        Series("readings", {"plant": "b", "signal": "speed"}, ["time", "value"], [[0, 2.0]]),
    ]
    lines = render_influxql(series, as_json=False).splitlines()
    assert lines[0].split() == ["plant", "signal", "time", "value"]
    assert lines[1].split() == ["a", "temp", "1970-01-01T00:00:00.000+00:00", "1.5"]
    assert len(lines) == 3
    assert render_influxql([], as_json=False) == "(no data)"
    assert '"rows"' in render_influxql(series, as_json=True)


def test_flux_answers_print_as_a_table() -> None:
    text = render_flux([{"plant": "a", "_value": "3"}, {"plant": "bb", "_value": "4"}], False)
    assert text.splitlines() == ["plant  _value", "a      3", "bb     4"]
