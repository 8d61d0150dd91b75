"""Rebuilding batches from InfluxDB rows, against a fake InfluxQL answerer: bounded windows that
halve when full, every row once and in order, runs of one machine as batches, machine classes
from the stored tag or the registry, and bad rows counted by reason."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerting.backtest_influx import (
    HISTORY_GATEWAY,
    BatchRebuilder,
    HistoryQuery,
    HistoryStats,
    ns,
    read_influx,
    statement,
    windows,
)
from plantmesh.connections import InfluxConnection
from plantmesh.contracts import Quality
from plantmesh.fleet import Fleet
from plantmesh.influxql import Series

T0 = datetime(2026, 1, 1, tzinfo=UTC)
INFLUX = InfluxConnection(url="http://influx.invalid:8086", bucket="history/autogen")
FLEET = Fleet.from_plants({"plant-a": {"press-01": "hydraulic_press"}})


def row(
    t: float, machine: str = "press-01", signal: str = "bearing_temp", **fields: Any
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "time": ns(T0 + timedelta(seconds=t)),
        "plant": "plant-a",
        "area": "stamping",
        "line": "line1",
        "machine": machine,
        "signal": signal,
        "unit": "degC",
        "machine_class": None,
        "value": 80.0,
        "value_str": None,
        "status_code": 0,
        "quality": "good",
    }
    return {**base, **fields}


class FakeInflux:
    """Answers the backtest's statements from a list of rows, as InfluxDB would: rows in
    [time >= a, time < b), in time order, at most LIMIT of them."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = sorted(rows, key=lambda r: r["time"])
        self.statements: list[str] = []
        self.answered: list[int] = []

    def __call__(self, url: str, database: str, text: str, timeout_s: float) -> list[Series]:
        assert (url, database) == (INFLUX.url, "history")
        self.statements.append(text)
        low, high = (int(x) for x in re.findall(r"time [<>]=? (\d+)", text))
        limit = re.search(r"LIMIT (\d+)$", text)
        found = [r for r in self.rows if low <= r["time"] < high]
        if limit:
            found = found[: int(limit[1])]
        self.answered.append(len(found))
        columns = ["time", *(c for c in row(0) if c != "time")]
        return [Series("readings", {}, columns, [[r.get(c) for c in columns] for r in found])]


def test_statement_selects_tags_and_fields_merged_in_time_order_with_a_plant_filter() -> None:
    settings = HistoryQuery(INFLUX, plants=("plant-a", "o'brien"))
    text = statement(settings, 10, 20, 101)
    assert text.startswith('SELECT "plant", "area", "line", "machine", "signal", "unit", ')
    assert 'FROM "readings" WHERE time >= 10 AND time < 20' in text
    assert "(\"plant\" = 'plant-a' OR \"plant\" = 'o\\'brien')" in text
    assert text.endswith(" LIMIT 101")
    assert "GROUP BY" not in text  # grouped, LIMIT would bound each series, not the window


def test_a_full_window_is_halved_and_every_row_comes_once_in_order() -> None:
    # 2 machines x 100 s; at most 30 rows a query: windows must shrink below 15 s.
    rows = [row(t, m) for t in range(100) for m in ("press-02", "press-01")]
    fake = FakeInflux(rows)
    stats = HistoryStats()
    settings = HistoryQuery(INFLUX, max_rows=30, first_window_s=60)
    chunks = list(windows(settings, T0, T0 + timedelta(seconds=100), stats, fake))
    flat = [r for chunk in chunks for r in chunk]
    assert [(r["time"], r["machine"]) for r in flat] == sorted(
        (r["time"], r["machine"]) for r in rows
    )
    assert max(len(chunk) for chunk in chunks) <= 30
    assert max(fake.answered) == 31  # a full answer (LIMIT max+1) was asked again, smaller
    assert stats.queries == len(fake.statements) > len(chunks)


def test_a_quiet_window_doubles_the_next() -> None:
    fake = FakeInflux([row(0), row(3599)])
    settings = HistoryQuery(INFLUX, max_rows=100, first_window_s=60)
    list(windows(settings, T0, T0 + timedelta(hours=1), HistoryStats(), fake))
    spans = [
        int(b) - int(a)
        for a, b in (re.findall(r"(\d+) AND time < (\d+)", s)[0] for s in fake.statements)
    ]
    assert spans[:4] == [60 * 10**9, 120 * 10**9, 240 * 10**9, 480 * 10**9]


def test_runs_of_one_machine_make_one_batch_each_numbered_in_replay_order() -> None:
    rows = [row(0, "press-01"), row(0, "press-01", "oil_temp"), row(0, "press-02"), row(1)]
    stats = HistoryStats()
    items = list(BatchRebuilder(stats, FLEET).items(rows))
    shape = [(b.readings[0].asset.machine, len(b.readings), c) for b, c in items]
    assert shape == [
        ("press-01", 2, "hydraulic_press"),
        ("press-02", 1, None),
        ("press-01", 1, "hydraulic_press"),
    ]
    assert [b.seq for b, _ in items] == [1, 2, 3]
    assert {b.gateway_id for b, _ in items} == {HISTORY_GATEWAY}
    assert (stats.rows, stats.readings, stats.batches) == (4, 4, 3)


def test_a_batch_holds_at_most_batch_readings() -> None:
    rows = [row(t) for t in range(7)]
    sizes = [
        len(b.readings) for b, _ in BatchRebuilder(HistoryStats(), batch_readings=3).items(rows)
    ]
    assert sizes == [3, 3, 1]


def test_readings_come_back_as_the_writer_stored_them() -> None:
    rebuilder = BatchRebuilder(HistoryStats())
    text, _ = rebuilder.reading(row(1.5, signal="mode", value=None, value_str="auto", unit=None))
    assert (text.value, text.unit, text.source_ts) == ("auto", None, T0 + timedelta(seconds=1.5))
    whole, _ = rebuilder.reading(row(2, value=1))  # InfluxDB's JSON drops ".0"
    assert isinstance(whole.value, float)
    assert whole.value == 1.0
    bad, _ = rebuilder.reading(row(3, status_code=0x80050000, quality=None))
    assert bad.quality is Quality.BAD  # no stored quality: the status code's severity


def test_a_stored_machine_class_tag_wins_over_the_registry() -> None:
    _, machine_class = BatchRebuilder(HistoryStats(), FLEET).reading(row(0, machine_class="press"))
    assert machine_class == "press"


def test_bad_rows_are_counted_by_reason_and_the_good_ones_around_them_replayed() -> None:
    rows = [
        row(0),
        row(1, line=None),
        row(2, value=None),
        row(3, quality="weird"),
        row(4, signal="bad name!"),
        row(5),
    ]
    stats = HistoryStats()
    items = list(BatchRebuilder(stats).items(rows))
    assert sum(len(b.readings) for b, _ in items) == 2
    assert stats.rows == 6
    assert dict(stats.bad_rows) == {
        "missing tag line": 1,
        "no value": 1,
        "invalid reading: quality (enum)": 1,
        "invalid reading: signal (string_pattern_mismatch)": 1,
    }


def test_a_bad_point_stored_without_a_value_replays_as_a_bad_reading() -> None:
    bad = row(1, value=None, status_code=0x808B0000, quality="bad")  # as the writer stores it
    stats = HistoryStats()
    [(batch, _)] = list(BatchRebuilder(stats).items([row(0), bad]))
    assert [(r.value, r.quality.value, r.status_code) for r in batch.readings] == [
        (80.0, "good", 0),
        (None, "bad", 0x808B0000),
    ]
    assert not stats.bad_rows


@pytest.mark.parametrize("max_rows", [3, 10_000])
def test_read_influx_gives_the_same_batches_whatever_the_window_size(max_rows: int) -> None:
    rows = [row(t, m, value=float(t)) for t in range(20) for m in ("press-01", "press-02")]
    settings = HistoryQuery(INFLUX, max_rows=max_rows)
    stats = HistoryStats()
    items = list(
        read_influx(
            settings, T0, T0 + timedelta(seconds=20), stats=stats, run_query=FakeInflux(rows)
        )
    )
    readings = [(r.asset.machine, r.value) for b, _ in items for r in b.readings]
    assert readings == [(m, float(t)) for t in range(20) for m in ("press-01", "press-02")]
    assert stats.readings == 40
