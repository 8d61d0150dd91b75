"""The statements each question turns into, in InfluxQL and in Flux.

`last` takes the newest point of each series whatever its fields: a Bad reading is stored
without `value`/`value_str` (only `status_code` and `quality`), so `last(value)` would skip it
and show an older number as if it were current. Completeness figures are cumulative and the
ledger writes them only while they change: the newest point of each gateway is its state, however
old, so `completeness` looks at all time unless --since is given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

READINGS = "readings"
COMPLETENESS = "completeness"
READING_FIELDS = ("value", "value_str", "status_code", "quality")
COMPLETENESS_FIELDS = (
    "batches_expected",
    "batches_received",
    "batches_missing",
    "duplicates",
    "open_gaps",
)
NOT_GOOD = ("uncertain", "bad")


@dataclass(frozen=True)
class Question:
    """One of the common questions, with its filters (None: not filtered)."""

    name: str  # last, series, completeness
    plant: str | None = None
    machine: str | None = None
    signal: str | None = None
    since: str | None = None  # a duration like 1h; None: all time
    every: str | None = None  # series only: downsample per window

    @property
    def measurement(self) -> str:
        return COMPLETENESS if self.name == "completeness" else READINGS

    def tag_filters(self) -> dict[str, str]:
        names = ("plant",) if self.name == "completeness" else ("plant", "machine", "signal")
        return {n: v for n in names if (v := getattr(self, n))}


def literal(text: str) -> str:
    """An InfluxQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def flux_string(text: str) -> str:
    return json.dumps(text)  # Flux string literals escape like JSON's


def where_clause(q: Question, *extra: str) -> str:
    """` WHERE ...` with the question's tags and time window, or ""."""
    terms = [f"{tag} = {literal(value)}" for tag, value in q.tag_filters().items()]
    terms += extra
    if q.since:
        terms.append(f"time > now() - {q.since}")
    return f" WHERE {' AND '.join(terms)}" if terms else ""


# --- InfluxQL ---------------------------------------------------------------------------------
def influxql(q: Question) -> dict[str, str]:
    """The statements that answer `q`, by the part of the answer each gives."""
    fields = ", ".join(READING_FIELDS)
    if q.name == "last":
        return {
            "last": f"SELECT {fields} FROM {READINGS}{where_clause(q)} "
            "GROUP BY plant, machine, signal, unit ORDER BY time DESC LIMIT 1"
        }
    if q.name == "series" and not q.every:
        return {
            "points": f"SELECT {fields} FROM {READINGS}{where_clause(q)} "
            "GROUP BY plant, machine, unit"
        }
    if q.name == "series":
        group = f" GROUP BY time({q.every}), plant, machine fill(none)"
        statements = {
            "values": "SELECT mean(value) AS mean, min(value) AS min, max(value) AS max, "
            f"count(quality) AS points FROM {READINGS}{where_clause(q)}{group}"
        }
        for quality in NOT_GOOD:  # quality is a field: one count per value, merged per window
            where = where_clause(q, f"quality = {literal(quality)}")
            statements[quality] = (
                f"SELECT count(quality) AS {quality} FROM {READINGS}{where}{group}"
            )
        return statements
    if q.name == "completeness":
        return {
            "figures": f"SELECT {', '.join(COMPLETENESS_FIELDS)} FROM {COMPLETENESS}"
            f"{where_clause(q)} GROUP BY plant, gateway ORDER BY time DESC LIMIT 1"
        }
    raise ValueError(f"unknown question {q.name!r}")


# --- Flux -------------------------------------------------------------------------------------
def _flux_source(q: Question, bucket: str, fields: tuple[str, ...]) -> str:
    start = f"-{q.since}" if q.since else "1970-01-01T00:00:00Z"
    tags = "".join(
        f" |> filter(fn: (r) => r.{tag} == {flux_string(value)})"
        for tag, value in q.tag_filters().items()
    )
    wanted = " or ".join(f"r._field == {flux_string(f)}" for f in fields)
    return (
        f"from(bucket: {flux_string(bucket)}) |> range(start: {start})"
        f" |> filter(fn: (r) => r._measurement == {flux_string(q.measurement)})"
        f" |> filter(fn: (r) => {wanted}){tags}"
    )


_PIVOT = ' |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'


def flux(q: Question, bucket: str) -> dict[str, str]:
    """The Flux queries that answer `q`, by the part of the answer each gives."""
    if q.name == "last":
        return {
            "last": _flux_source(q, bucket, READING_FIELDS)
            + _PIVOT
            + ' |> group(columns: ["plant", "machine", "signal"]) |> last(column: "_time")'
        }
    if q.name == "series" and not q.every:
        return {
            "points": _flux_source(q, bucket, READING_FIELDS)
            + _PIVOT
            + ' |> group(columns: ["plant", "machine"]) |> sort(columns: ["_time"])'
        }
    if q.name == "series":
        window = f'every: {q.every}, createEmpty: false, timeSrc: "_start"'
        values = _flux_source(q, bucket, ("value",)) + ' |> group(columns: ["plant", "machine"])'
        quality = _flux_source(q, bucket, ("quality",)) + ' |> group(columns: ["plant", "machine"])'
        queries = {
            name: f"{values} |> aggregateWindow({window}, fn: {name})"
            for name in ("mean", "min", "max")
        }
        queries["points"] = f"{quality} |> aggregateWindow({window}, fn: count)"
        for name in NOT_GOOD:
            queries[name] = (
                f"{quality} |> filter(fn: (r) => r._value == {flux_string(name)})"
                f" |> aggregateWindow({window}, fn: count)"
            )
        return queries
    if q.name == "completeness":
        return {
            "figures": _flux_source(q, bucket, COMPLETENESS_FIELDS)
            + _PIVOT
            + ' |> group(columns: ["plant", "gateway"]) |> last(column: "_time")'
        }
    raise ValueError(f"unknown question {q.name!r}")
