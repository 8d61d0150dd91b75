"""`plantmesh query`: options before or after the question, and the statements each question
turns into (InfluxQL and Flux)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from plantmesh.cli import build_parser
from plantmesh.query import statements
from plantmesh.query.cli import _resolve, question_of
from plantmesh.query.statements import Question


def parse(*argv: str) -> argparse.Namespace:
    args = build_parser(registers=[]).parse_args(["query", *argv])
    _resolve(args)
    return args


COMMON = [
    "--url", "http://influx:8086", "--db", "other", "--token-file", "/t", "--format", "csv",
    "--flux", "--show", "--timeout", "5", "--bucket", "b/rp",
]  # fmt: skip


@pytest.mark.parametrize("question", ["last", "series", "completeness", "influxql", "flux"])
@pytest.mark.parametrize("where", ["before", "after"])
def test_common_options_work_before_or_after_the_question(question: str, where: str) -> None:
    rest = {"series": ["--signal", "s"], "influxql": ["SHOW DATABASES"], "flux": ["buckets()"]}
    tail = [question, *rest.get(question, [])]
    args = parse(*COMMON, *tail) if where == "before" else parse(*tail, *COMMON)
    assert (args.url, args.database, args.bucket) == ("http://influx:8086", "other", "b/rp")
    assert (args.token_file, args.format, args.timeout) == (Path("/t"), "csv", 5.0)
    assert args.flux
    assert args.show


def test_a_question_keeps_what_came_before_it_and_defaults_fill_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PLANTMESH_INFLUX_URL", "http://from-env:1")
    args = parse("--db", "mine", "last")
    assert (args.database, args.bucket, args.url) == ("mine", "mine/autogen", "http://from-env:1")
    assert (args.format, args.flux, args.token, args.token_file) == ("table", False, None, None)
    assert parse("--format", "csv", "last", "--json").format == "json"  # the later one wins
    assert parse("last", "--db", "a").database == "a"


def test_bad_options_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("last", "--format", "xml")
    assert "invalid choice: 'xml'" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["1", "h", "-1h", "1y", "1h; DROP"])
def test_durations_are_checked(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("series", "--signal", "s", f"--since={bad}")
    assert "duration" in capsys.readouterr().err


def test_raw_queries_take_the_text_and_have_no_question() -> None:
    assert parse("influxql", "SHOW DATABASES").text == "SHOW DATABASES"
    assert question_of(parse("flux", "buckets()")) is None


def test_last_takes_the_newest_point_of_each_series_whatever_its_fields() -> None:
    q = question_of(parse("last", "--plant", "plant-a", "--machine", "press-01"))
    assert q is not None
    (text,) = statements.influxql(q).values()
    assert text == (
        "SELECT value, value_str, status_code, quality FROM readings WHERE plant = 'plant-a' AND "
        "machine = 'press-01' AND time > now() - 1h "
        "GROUP BY plant, machine, signal, unit ORDER BY time DESC LIMIT 1"
    )
    assert "last(value)" not in text  # it would skip a Bad point and show an older number
    (flux,) = statements.flux(q, "plantmesh/autogen").values()
    assert 'pivot(rowKey: ["_time"], columnKey: ["_field"]' in flux
    assert 'last(column: "_time")' in flux
    assert 'r._field == "status_code"' in flux


def test_literals_are_escaped() -> None:
    q = Question("last", plant="it's", machine='a"b')
    assert "plant = 'it\\'s'" in statements.influxql(q)["last"]
    assert 'r.machine == "a\\"b"' in statements.flux(q, "x/autogen")["last"]


def test_series_raw_and_downsampled() -> None:
    raw = statements.influxql(Question("series", signal="bearing_temp", since="2h"))["points"]
    assert raw.startswith("SELECT value, value_str, status_code, quality FROM readings")
    assert "WHERE signal = 'bearing_temp' AND time > now() - 2h" in raw
    trend = statements.influxql(Question("series", signal="t", since="1h", every="5m"))
    assert set(trend) == {"values", "uncertain", "bad"}
    assert "mean(value) AS mean" in trend["values"]
    assert "count(quality) AS points" in trend["values"]
    assert "AND quality = 'bad' AND time > now() - 1h" in trend["bad"]
    assert all("GROUP BY time(5m), plant, machine fill(none)" in t for t in trend.values())
    flux = statements.flux(Question("series", signal="t", since="1h", every="5m"), "b")
    assert (
        'aggregateWindow(every: 5m, createEmpty: false, timeSrc: "_start", fn: mean)'
        in (flux["mean"])
    )
    assert 'r._value == "bad"' in flux["bad"]


def test_completeness_reads_each_gateways_latest_figures_over_all_time() -> None:
    q = Question("completeness", plant="plant-a")
    (text,) = statements.influxql(q).values()
    assert text == (
        "SELECT batches_expected, batches_received, batches_missing, duplicates, open_gaps "
        "FROM completeness WHERE plant = 'plant-a' GROUP BY plant, gateway "
        "ORDER BY time DESC LIMIT 1"
    )  # no aggregate over gateways: that is what printed 1970-01-01 as the time
    (flux,) = statements.flux(q, "other/autogen").values()
    assert flux.startswith('from(bucket: "other/autogen") |> range(start: 1970-01-01T00:00:00Z)')
    since = statements.influxql(Question("completeness", since="1d"))["figures"]
    assert "WHERE time > now() - 1d GROUP BY" in since
