"""`plantmesh query`: answers shaped into one table per question (from InfluxQL or Flux), the
three formats, and the hints after an empty answer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from plantmesh.influxql import InfluxQueryError, Series
from plantmesh.query import answers, hints, statements
from plantmesh.query.formats import Table, render, rfc3339
from plantmesh.query.statements import Question

T0 = 1_796_505_061_947_869_003  # 2026-12-05T21:11:01.947869003Z
COLS = ["time", "value", "value_str", "status_code", "quality"]


def last_series() -> list[Series]:
    def s(signal: str, unit: str, row: list[Any]) -> Series:
        tags = {"plant": "p", "machine": "m", "signal": signal, "unit": unit}
        return Series("readings", tags, COLS, [row])

    return [
        s("temp", "degC", [T0 + 1, None, None, 2156593152, "bad"]),
        s("rpm", "", [T0, 0.30000000000000004, None, 1083441152, "uncertain"]),
        s("mode", "", [T0, None, "run", 0, "good"]),
        s("speed", "", [T0, 1450, None, 0, "good"]),
    ]


def last_table() -> Table:
    q = Question("last", since="1h")
    return answers.answer_influxql(q, statements.influxql(q), lambda _: last_series())


def test_last_shows_bad_without_a_value_text_values_and_quality() -> None:
    rows = {r["signal"]: r for r in last_table().rows}
    assert rows["temp"]["value"] is None  # never a number for a Bad point
    assert (rows["temp"]["quality"], rows["temp"]["status_code"]) == ("bad", 2156593152)
    assert rows["mode"]["value"] == "run"
    assert rows["mode"]["status_code"] is None  # a status code only when not good
    assert rows["speed"]["value"] == 1450.0
    assert isinstance(rows["speed"]["value"], float)
    lines = render(last_table(), "table").splitlines()
    assert lines[0].split() == [
        "plant", "machine", "signal", "time", "value", "unit", "quality", "status_code",
    ]  # fmt: skip
    assert lines[1].split() == ["p", "m", "mode", "2026-12-05T21:11:01.947869003Z", "run", "good"]
    assert lines[2].split()[4:] == ["0.30000000000000004", "uncertain", "0x40940000"]
    assert lines[4].split()[3:] == ["2026-12-05T21:11:01.947869004Z", "degC", "bad", "0x808B0000"]


def test_the_newest_point_wins_when_a_signal_is_two_series() -> None:
    old = Series("readings", {"plant": "p", "machine": "m", "signal": "t", "unit": ""}, COLS,
                 [[T0 - 5, 1.0, None, 0, "good"]])  # fmt: skip
    new = Series("readings", {"plant": "p", "machine": "m", "signal": "t", "unit": "degC"}, COLS,
                 [[T0, 2.0, None, 0, "good"]])  # fmt: skip
    q = Question("last")
    table = answers.answer_influxql(q, statements.influxql(q), lambda _: [new, old])
    assert [(r["value"], r["unit"]) for r in table.rows] == [(2.0, "degC")]


def test_flux_rows_give_the_same_table() -> None:
    rows = [
        {"_time": "2026-12-05T21:11:01Z", "_measurement": "readings", "plant": "p",
         "machine": "m", "signal": "temp", "unit": "degC", "quality": "bad",
         "status_code": "2156593152", "value": "0"},  # Flux's pivot can print a null as 0
        {"_time": "2026-12-05T21:11:01Z", "plant": "p", "machine": "m", "signal": "mode",
         "quality": "good", "status_code": "0", "value_str": "run"},
    ]  # fmt: skip
    q = Question("last", since="1h")
    table = answers.answer_flux(q, statements.flux(q, "b"), lambda _: rows)
    by_signal = {r["signal"]: r for r in table.rows}
    assert by_signal["temp"]["value"] is None
    assert by_signal["temp"]["status_code"] == 2156593152
    assert by_signal["mode"]["value"] == "run"


def test_downsampled_windows_merge_the_counts_and_take_the_worst_quality() -> None:
    tags = {"plant": "p", "machine": "m"}

    def run(text: str) -> list[Series]:
        if "AS mean" in text:
            cols = ["time", "mean", "min", "max", "points"]
            return [Series("readings", tags, cols, [[0, 1.5, 1, 2, 3], [60 * 10**9, 4.0, 4, 4, 2]])]
        name = "bad" if "'bad'" in text else "uncertain"
        return [Series("readings", tags, ["time", name], [[0, 1]])] if name == "bad" else []

    q = Question("series", signal="s", since="1h", every="1m")
    table = answers.answer_influxql(q, statements.influxql(q), run)
    first, second = table.rows
    assert (first["min"], first["points"], first["bad"], first["quality"]) == (1.0, 3, 1, "bad")
    assert (second["uncertain"], second["bad"], second["quality"]) == (0, 0, "good")


def test_completeness_per_gateway_with_real_times_and_a_plant_total() -> None:
    cols = ["time", "batches_expected", "batches_received", "batches_missing", "duplicates",
            "open_gaps"]  # fmt: skip
    series = [
        Series("completeness", {"plant": "p", "gateway": "gw-b"}, cols, [[T0, 6, 5, 1, 2, 1]]),
        Series("completeness", {"plant": "p", "gateway": "gw-a"}, cols, [[T0 - 9, 4, 4, 0, 0, 0]]),
    ]
    q = Question("completeness")
    table = answers.answer_influxql(q, statements.influxql(q), lambda _: series)
    assert [r["gateway"] for r in table.rows] == ["gw-a", "gw-b", answers.ALL_GATEWAYS]
    _a, b, total = table.rows
    assert (b["received_ratio"], b["missing"], b["duplicates"]) == (0.8333, 1, 2)
    assert (total["expected"], total["received"], total["received_ratio"]) == (10, 9, 0.9)
    assert total["time"] == T0
    assert "1970" not in render(table, "table")


def test_formats_print_values_exactly() -> None:
    table = Table(["time", "value", "status_code"], [
        {"time": T0, "value": 0.1 + 0.2, "status_code": 0x808B0000},
        {"time": 10**9, "value": 1e-7, "status_code": None},
        {"time": 0, "value": "a,\"b\"\nc", "status_code": None},
    ])  # fmt: skip
    csv_lines = render(table, "csv").splitlines()
    assert csv_lines[0] == "time,value,status_code"
    assert csv_lines[1] == "2026-12-05T21:11:01.947869003Z,0.30000000000000004,0x808B0000"
    assert csv_lines[2] == "1970-01-01T00:00:01Z,1e-07,"
    as_json = json.loads(render(table, "json"))
    assert as_json[0] == {
        "time": "2026-12-05T21:11:01.947869003Z", "value": 0.30000000000000004,
        "status_code": "0x808B0000",
    }  # fmt: skip
    assert as_json[2]["value"] == 'a,"b"\nc'
    assert as_json[1]["status_code"] is None
    shown = render(table, "table").splitlines()
    assert len(shown) == 4
    assert shown[3].endswith('"a,\\"b\\"\\nc"')


def test_an_empty_answer_in_each_format() -> None:
    empty = Table(["plant", "value"])
    assert render(empty, "table") == "(no data)"
    assert render(empty, "csv") == "plant,value"
    assert render(empty, "json") == "[]"
    with pytest.raises(ValueError, match="unknown format"):
        render(empty, "xml")


def test_rfc3339_is_exact() -> None:
    assert rfc3339(1) == "1970-01-01T00:00:00.000000001Z"
    assert rfc3339(1_500_000_000) == "1970-01-01T00:00:01.5Z"


def fake_show(answers_by_statement: dict[str, list[Series]]) -> hints.RunShow:
    def run(database: str, statement: str) -> list[Series]:
        for prefix, found in answers_by_statement.items():
            if statement.startswith(prefix):
                return found
        raise InfluxQueryError("not authorized")

    return run


def test_hints_name_the_missing_database_and_the_ones_there_are() -> None:
    run = fake_show({"SHOW DATABASES": [Series("databases", {}, ["name"], [["_internal"], ["a"]])]})
    lines = hints.no_data_hints(run, Question("last", plant="p", since="1h"), "nosuch")
    assert lines[0] == (
        "no data in database 'nosuch', measurement 'readings', where plant = 'p', in the last 1h"
    )
    assert lines[1].startswith("database 'nosuch' does not exist")
    assert lines[1].endswith("databases you may read: a (choose one with --db)")


def test_hints_name_a_missing_tag_value_and_suggest_a_longer_window() -> None:
    run = fake_show({
        "SHOW DATABASES": [Series("databases", {}, ["name"], [["db"]])],
        "SHOW MEASUREMENTS": [Series("measurements", {}, ["name"], [["readings"]])],
        "SHOW TAG VALUES FROM readings WITH KEY = plant": [
            Series("readings", {}, ["key", "value"], [["plant", "p1"], ["plant", "p2"]])
        ],
        "SHOW TAG VALUES FROM readings WITH KEY = machine": [
            Series("readings", {}, ["key", "value"], [["machine", "m1"]])
        ],
    })  # fmt: skip
    missing = hints.no_data_hints(run, Question("last", plant="p9", since="1h"), "db")
    assert missing[-1] == "no plant 'p9'; there are: p1, p2"
    stale = hints.no_data_hints(run, Question("last", plant="p1", machine="m1", since="1h"), "db")
    assert stale[-1].startswith("nothing newer than 1h ago: try a longer --since")
    # A user who may not run SHOW statements still gets the first line.
    assert hints.no_data_hints(fake_show({}), Question("completeness"), "db") == [
        "no data in database 'db', measurement 'completeness', over all time"
    ]
