"""Backtest input from InfluxDB: the `readings` measurement the ingest writer stores (tags plant,
area, line, machine, signal, unit; fields value or value_str, status_code, quality; time = source
time), read back over [start, end) and rebuilt into the batches the engine takes.

- Bounded: one InfluxQL query per time window, at most `max_rows` rows each. A window that comes
  back full is halved and asked again; one that comes back small doubles the next. Hours of
  data never sit in memory at once.
- Ordered: rows by source time, then series, the order a replay must keep. A batch is a run of
  consecutive rows of one machine (at most `batch_readings`), as a gateway would have sent them.
- Machine class: a stored `machine_class` tag if the measurement has one, else the asset
  registry's (plantmesh.fleet), else none, as the service receives it from the writer's header.
- InfluxDB keeps no gateway, session or sequence number: each plant's batches come through one
  gateway named HISTORY_GATEWAY, numbered in replay order (so the engine's duplicate check never
  drops one). Gateway births, deaths and completeness gaps are not stored: the rules that need
  them see nothing.
- A row that makes no reading (a missing tag, no value on a point that is not Bad, an invalid
  one) is counted by reason in HistoryStats.bad_rows and logged once per reason, never silently
  dropped. A Bad point has no value (plantmesh.contracts.readings): it makes a Bad reading.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from alerting.backtest import Item
from plantmesh.connections import InfluxConnection
from plantmesh.contracts import AssetPath, Quality, Reading, ReadingBatch
from plantmesh.fleet import Fleet
from plantmesh.influxql import InfluxQueryError, Series, query
from plantmesh.resilience import ErrorLog

log = logging.getLogger(__name__)

MEASUREMENT = "readings"
TAGS = ("plant", "area", "line", "machine", "signal")
COLUMNS = (*TAGS, "unit", "machine_class", "value", "value_str", "status_code", "quality")
HISTORY_GATEWAY = "history"
HISTORY_SESSION = "influxdb"
SECOND_NS = 1_000_000_000
SMALLEST_WINDOW_NS = 1_000  # a microsecond: what a datetime (hence a Reading) can tell apart
LARGEST_WINDOW_NS = 3600 * SECOND_NS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

RunQuery = Callable[[str, str, str, float], list[Series]]
"""plantmesh.influxql.query's shape (url, database, statement, timeout): swapped out in tests."""


def authorized_query(influx: InfluxConnection) -> RunQuery:
    """plantmesh.influxql.query with the connection's credentials (its token file read now)."""
    try:
        token = influx.token_value()
    except ValueError as exc:
        raise InfluxQueryError(str(exc)) from None

    def run(url: str, database: str, statement: str, timeout_s: float) -> list[Series]:
        return query(url, database, statement, timeout_s, token=token)

    return run


@dataclass(frozen=True)
class HistoryQuery:
    """Where the history is and how much of it one query may bring back."""

    influx: InfluxConnection
    measurement: str = MEASUREMENT
    plants: tuple[str, ...] = ()
    """Only these plants (empty: every plant)."""
    max_rows: int = 10_000
    first_window_s: float = 60.0
    batch_readings: int = 500


@dataclass
class HistoryStats:
    """What the read found: rows, the readings and batches made of them, and the rows that made
    no reading, by reason."""

    rows: int = 0
    readings: int = 0
    batches: int = 0
    queries: int = 0
    bad_rows: Counter[str] = field(default_factory=Counter)


def ns(moment: datetime) -> int:
    """Exact nanoseconds since the epoch (integer arithmetic: floats lose microseconds)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * SECOND_NS + delta.microseconds * 1_000


def _identifier(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def statement(settings: HistoryQuery, start_ns: int, end_ns: int, limit: int | None) -> str:
    """One window's rows, every series merged in time order (no GROUP BY: LIMIT bounds it all)."""
    where = [f"time >= {start_ns}", f"time < {end_ns}"]
    if settings.plants:
        where.append("(" + " OR ".join(f'"plant" = {_literal(p)}' for p in settings.plants) + ")")
    columns = ", ".join(_identifier(c) for c in COLUMNS)
    text = f"SELECT {columns} FROM {_identifier(settings.measurement)} WHERE {' AND '.join(where)}"
    return text if limit is None else f"{text} LIMIT {limit}"


def _rows(series: list[Series]) -> list[dict[str, Any]]:
    return [row for item in series for row in item.rows()]


def windows(
    settings: HistoryQuery,
    start: datetime,
    end: datetime,
    stats: HistoryStats,
    run_query: RunQuery | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """The rows of [start, end), a window at a time, each window's rows sorted by time and
    series. A window holds at most max_rows rows, unless more share one microsecond.
    `run_query`: default plantmesh.influxql.query with the connection's credentials."""
    influx, cursor, stop = settings.influx, ns(start), ns(end)
    run_query = run_query or authorized_query(influx)
    span = max(SMALLEST_WINDOW_NS, int(settings.first_window_s * SECOND_NS))
    while cursor < stop:
        upper = min(cursor + span, stop)
        smallest = upper - cursor <= SMALLEST_WINDOW_NS
        limit = None if smallest else settings.max_rows + 1
        stats.queries += 1
        rows = _rows(
            run_query(
                influx.url,
                influx.database,
                statement(settings, cursor, upper, limit),
                influx.timeout_s,
            )
        )
        if limit is not None and len(rows) >= limit:
            span = max(SMALLEST_WINDOW_NS, (upper - cursor) // 2)  # too full: ask for less
            continue
        rows.sort(key=_order)
        yield rows
        cursor = upper
        if len(rows) < settings.max_rows // 4:
            span = min(LARGEST_WINDOW_NS, span * 2)


def _order(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row.get("time") or 0, *((row.get(tag) or "") for tag in TAGS))


class UnusableRowError(ValueError):
    """A row that makes no reading; the message is the reason it is counted under."""


class BatchRebuilder:
    """Rows in replay order into (batch, machine class) items; see the module docstring."""

    def __init__(self, stats: HistoryStats, fleet: Fleet | None = None, batch_readings: int = 500):
        self.stats = stats
        self.fleet = fleet
        self.batch_readings = batch_readings
        self._assets: dict[tuple[str, ...], AssetPath] = {}
        self._errors = ErrorLog(log, "history rows")

    def items(self, rows: list[dict[str, Any]]) -> Iterator[Item]:
        pending: list[Reading] = []
        pending_class: str | None = None
        for row in rows:
            self.stats.rows += 1
            try:
                reading, machine_class = self.reading(row)
            except UnusableRowError as bad:
                self.stats.bad_rows[str(bad)] += 1
                self._errors.once(str(bad), "row not replayed (%s): %s", bad, row)
                continue
            if pending and (
                reading.asset != pending[0].asset
                or machine_class != pending_class
                or len(pending) >= self.batch_readings
            ):
                yield self._batch(pending), pending_class
                pending = []
            pending.append(reading)
            pending_class = machine_class
        if pending:
            yield self._batch(pending), pending_class

    def reading(self, row: dict[str, Any]) -> tuple[Reading, str | None]:
        missing = [tag for tag in TAGS if not (isinstance(row.get(tag), str) and row[tag])]
        if missing:
            raise UnusableRowError(f"missing tag {', '.join(missing)}")
        if not isinstance(row.get("time"), int):
            raise UnusableRowError("no time")
        value = row.get("value")
        if value is None:
            value = row.get("value_str")
        plant, area, line, machine, signal = (str(row[tag]) for tag in TAGS)
        try:
            status_code = row.get("status_code") or 0
            quality = row.get("quality") or Quality.from_status_code(status_code)
            if value is None and quality != Quality.BAD:  # a Bad point is stored without one
                raise UnusableRowError("no value")
            asset = self._asset(plant, area, line, machine)
            at = _EPOCH + timedelta(microseconds=row["time"] // 1_000)
            reading = Reading(
                asset=asset,
                signal=signal,
                value=float(value) if isinstance(value, int) else value,
                unit=row.get("unit") or None,
                status_code=status_code,
                quality=quality,
                source_ts=at,
                gateway_ts=at,
            )
        except (ValidationError, TypeError) as exc:
            raise UnusableRowError(f"invalid reading: {_first_problem(exc)}") from None
        return reading, self._machine_class(row, plant, machine)

    def _asset(self, plant: str, area: str, line: str, machine: str) -> AssetPath:
        key = (plant, area, line, machine)
        asset = self._assets.get(key)
        if asset is None:
            asset = self._assets[key] = AssetPath(
                plant=plant, area=area, line=line, machine=machine
            )
        return asset

    def _machine_class(self, row: dict[str, Any], plant: str, machine: str) -> str | None:
        stored = row.get("machine_class")
        if stored:
            return str(stored)
        found = self.fleet.get(plant, machine) if self.fleet is not None else None
        return found.machine_class if found is not None else None

    def _batch(self, readings: list[Reading]) -> ReadingBatch:
        self.stats.batches += 1
        self.stats.readings += len(readings)
        return ReadingBatch(
            gateway_id=HISTORY_GATEWAY,
            session_id=HISTORY_SESSION,
            seq=self.stats.batches,
            sent_at=readings[-1].source_ts,
            readings=readings,
        )


def _first_problem(exc: Exception) -> str:
    """The first failing field and its type of error: a reason rows can be counted under."""
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where} ({first['type']})"
    return type(exc).__name__


def read_influx(
    settings: HistoryQuery,
    start: datetime,
    end: datetime,
    *,
    stats: HistoryStats,
    fleet: Fleet | None = None,
    run_query: RunQuery | None = None,
) -> Iterator[Item]:
    """The batches of [start, end) in replay order (raises InfluxQueryError)."""
    rebuilder = BatchRebuilder(stats, fleet, settings.batch_readings)
    for rows in windows(settings, start, end, stats, run_query):
        yield from rebuilder.items(rows)
