"""Answers to the common questions, one table each, the same whether InfluxQL or Flux asked.

A reading shows its text or number in `value`, its `quality`, and its status code when it is not
good; a Bad reading never shows a value (it has none: only its status code is stored).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from plantmesh.influxql import Series
from plantmesh.query.formats import Table
from plantmesh.query.statements import NOT_GOOD, Question

RunInfluxQL = Callable[[str], list[Series]]
RunFlux = Callable[[str], list[dict[str, str]]]

LAST_COLUMNS = ["plant", "machine", "signal", "time", "value", "unit", "quality", "status_code"]
POINT_COLUMNS = ["plant", "machine", "time", "value", "unit", "quality", "status_code"]
WINDOW_COLUMNS = [
    "plant", "machine", "time", "mean", "min", "max", "points", *NOT_GOOD, "quality",
]  # fmt: skip
COMPLETENESS_COLUMNS = [
    "plant", "gateway", "time", "expected", "received", "received_ratio", "missing",
    "duplicates", "open_gaps",
]  # fmt: skip
ALL_GATEWAYS = "(all)"
"""The gateway column of a plant's total row in `completeness`."""


def reading_cells(value: Any, value_str: Any, status_code: Any, quality: Any) -> dict[str, Any]:
    """`value`, `quality` and `status_code` of one stored reading."""
    shown = None if quality == "bad" else value_str if value_str is not None else _float(value)
    return {
        "value": shown,
        "quality": quality,
        "status_code": status_code if quality != "good" else None,
    }


def _float(value: Any) -> Any:
    """The `value` field is a float, but InfluxDB's JSON prints 1450.0 as 1450: show it as one."""
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


# --- InfluxQL answers -------------------------------------------------------------------------
def _records(series: Iterable[Series]) -> list[dict[str, Any]]:
    """Each row as a dict, the series' tags included ("" tags, InfluxDB's "no such tag", as None)."""
    return [
        {**{k: v or None for k, v in s.tags.items()}, **row} for s in series for row in s.rows()
    ]


def _reading_rows(records: Iterable[dict[str, Any]], keep: list[str]) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        cells = reading_cells(
            r.get("value"), r.get("value_str"), r.get("status_code"), r.get("quality")
        )
        rows.append({**{k: r.get(k) for k in keep}, **cells})
    return rows


def _newest_per_signal(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # A signal whose unit tag changed is two series: only the newest point is its last value.
    newest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = (row["plant"], row["machine"], row["signal"])
        if key not in newest or row["time"] > newest[key]["time"]:
            newest[key] = row
    return sorted(
        newest.values(), key=lambda r: (r["plant"] or "", r["machine"] or "", r["signal"] or "")
    )


def _by_series_then_time(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["plant"] or "", r["machine"] or "", r["time"]))


def _windows(parts: Mapping[str, Iterable[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Merge per-window figures of several statements on (plant, machine, window start)."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for records in parts.values():
        for r in records:
            key = (r.get("plant"), r.get("machine"), r["time"])
            row = merged.setdefault(key, {"plant": key[0], "machine": key[1], "time": key[2]})
            row.update({k: v for k, v in r.items() if k in WINDOW_COLUMNS and v is not None})
    for row in merged.values():
        for name in ("points", *NOT_GOOD):
            row.setdefault(name, 0)
        # A window is as good as its worst reading; the counts say how many were not good.
        for name in ("mean", "min", "max"):
            row[name] = _float(row.get(name))
        row["quality"] = next((q for q in reversed(NOT_GOOD) if row[q]), "good")
    return _by_series_then_time(list(merged.values()))


def _completeness(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        expected, received = r.get("batches_expected"), r.get("batches_received")
        missing = r.get("batches_missing")
        if missing is None and expected is not None and received is not None:
            missing = expected - received  # figures written before batches_missing existed
        rows.append(
            {
                "plant": r.get("plant"),
                "gateway": r.get("gateway"),
                "time": r["time"],
                "expected": expected,
                "received": received,
                "missing": missing,
                "duplicates": r.get("duplicates"),
                "open_gaps": r.get("open_gaps"),
            }
        )
    rows.sort(key=lambda r: (r["plant"] or "", r["gateway"] or ""))
    out: list[dict[str, Any]] = []
    for plant in dict.fromkeys(r["plant"] for r in rows):
        mine = [r for r in rows if r["plant"] == plant]
        total: dict[str, Any] = {"plant": plant, "gateway": ALL_GATEWAYS}
        total["time"] = max(r["time"] for r in mine)
        for name in ("expected", "received", "missing", "duplicates", "open_gaps"):
            total[name] = sum(r[name] or 0 for r in mine)
        out += [*mine, total]
    for row in out:
        expected = row["expected"]
        # Computed, not stored: rounded so that 5 of 6 reads 0.8333, not 0.8333333333333334.
        row["received_ratio"] = round(row["received"] / expected, 4) if expected else None
    return out


def answer_influxql(q: Question, statements: Mapping[str, str], run: RunInfluxQL) -> Table:
    parts = {name: _records(run(text)) for name, text in statements.items()}
    if q.name == "last":
        rows = _reading_rows(parts["last"], ["plant", "machine", "signal", "time", "unit"])
        return Table(LAST_COLUMNS, _newest_per_signal(rows))
    if q.name == "series" and "points" in parts:
        rows = _reading_rows(parts["points"], ["plant", "machine", "time", "unit"])
        return Table(POINT_COLUMNS, _by_series_then_time(rows))
    if q.name == "series":
        return Table(WINDOW_COLUMNS, _windows(parts))
    return Table(COMPLETENESS_COLUMNS, _completeness(parts["figures"]))


# --- Flux answers (every cell arrives as text) ------------------------------------------------
def _number(text: str | None) -> int | float | None:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def _flux_records(rows: Iterable[dict[str, str]]) -> list[dict[str, Any]]:
    records = []
    for row in rows:
        r: dict[str, Any] = {k: v or None for k, v in row.items() if not k.startswith("_")}
        r["time"] = row.get("_time")
        for name in (
            "value", "status_code", "batches_expected", "batches_received", "batches_missing",
            "duplicates", "open_gaps",
        ):  # fmt: skip
            if name in row:
                r[name] = _number(row[name])
        if "value" in row and r["value"] is not None:
            r["value"] = float(r["value"])  # the value field is a float, whatever its text
        if "value_str" in row:
            r["value_str"] = (
                row["value_str"] if row["value_str"] != "" or "value" not in row else None
            )
        records.append(r)
    return records


def answer_flux(q: Question, queries: Mapping[str, str], run: RunFlux) -> Table:
    if q.name == "series" and q.every:
        parts: dict[str, list[dict[str, Any]]] = {}
        for name, text in queries.items():
            parts[name] = [
                {"plant": r.get("plant"), "machine": r.get("machine"), "time": r.get("_time"),
                 name: _number(r.get("_value"))}
                for r in run(text)
            ]  # fmt: skip
        return Table(WINDOW_COLUMNS, _windows(parts))
    records = {name: _flux_records(run(text)) for name, text in queries.items()}
    if q.name == "last":
        rows = _reading_rows(records["last"], ["plant", "machine", "signal", "time", "unit"])
        return Table(LAST_COLUMNS, _newest_per_signal(rows))
    if q.name == "series":
        rows = _reading_rows(records["points"], ["plant", "machine", "time", "unit"])
        return Table(POINT_COLUMNS, _by_series_then_time(rows))
    return Table(COMPLETENESS_COLUMNS, _completeness(records["figures"]))


# --- raw queries ------------------------------------------------------------------------------
def flatten_influxql(series: list[Series]) -> Table:
    """Any InfluxQL answer as one table: the group-by tags first, then every column."""
    tags = sorted({k for s in series for k in s.tags})
    columns = list(tags)
    for s in series:
        columns += [c for c in s.columns if c not in columns]
    return Table(columns, [{**s.tags, **row} for s in series for row in s.rows()])


def flatten_flux(rows: list[dict[str, str]]) -> Table:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    return Table(columns, [dict(row) for row in rows])
