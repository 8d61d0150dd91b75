"""A machine's recent series from InfluxDB, for the engineers' quick look: every signal's mean
per interval over a recent window, in one Flux query (plantmesh.influxql, the client the
`plantmesh query` command uses, run off the event loop), and the equivalent command lines."""

from __future__ import annotations

import asyncio
import json
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime

from alerting.console.charts import Point
from plantmesh.connections import InfluxConnection
from plantmesh.influxql import InfluxQueryError, flux

WINDOWS: dict[str, str] = {"15m": "15s", "1h": "1m", "6h": "5m", "24h": "20m"}
"""The windows offered, each with its interval: about 60-70 points per signal."""
DEFAULT_WINDOW = "1h"


@dataclass
class SignalSeries:
    signal: str
    unit: str
    points: list[Point] = field(default_factory=list)


def _string(text: str) -> str:
    return json.dumps(text)  # Flux string literals escape like JSON's


def flux_of(bucket: str, plant: str, machine: str, since: str, every: str) -> str:
    return (
        f"from(bucket: {_string(bucket)}) |> range(start: -{since})"
        ' |> filter(fn: (r) => r._measurement == "readings" and r._field == "value")'
        f" |> filter(fn: (r) => r.plant == {_string(plant)} and r.machine == {_string(machine)})"
        ' |> group(columns: ["signal", "unit"])'
        f" |> aggregateWindow(every: {every}, fn: mean, createEmpty: false)"
    )


def command_of(plant: str, machine: str, signal: str, since: str, every: str) -> str:
    """The `plantmesh query series` command that prints the same figures."""
    return shlex.join(
        [
            "plantmesh", "query", "series", "--signal", signal, "--since", since,
            "--every", every, "--plant", plant, "--machine", machine,
        ]
    )  # fmt: skip


def parse(rows: list[dict[str, str]]) -> list[SignalSeries]:
    """Flux rows (signal, unit, _time, _value) into one series per signal, by name."""
    found: dict[str, SignalSeries] = {}
    for row in rows:
        try:
            ts = datetime.fromisoformat(row["_time"].replace("Z", "+00:00"))
            value = float(row["_value"])
        except (KeyError, ValueError):
            continue
        signal = row.get("signal", "")
        series = found.setdefault(signal, SignalSeries(signal, row.get("unit", "")))
        series.points.append((ts if ts.tzinfo else ts.replace(tzinfo=UTC), value))
    for series in found.values():
        series.points.sort(key=lambda p: p[0])
    return [found[k] for k in sorted(found)]


async def recent_series(
    influx: InfluxConnection, plant: str, machine: str, since: str
) -> list[SignalSeries]:
    """Raises plantmesh.influxql.InfluxQueryError when InfluxDB cannot answer."""
    every = WINDOWS[since]
    query = flux_of(influx.bucket, plant, machine, since, every)
    try:
        token = influx.token_value()
    except ValueError as exc:  # an unreadable token file: the page says so
        raise InfluxQueryError(str(exc)) from None
    rows = await asyncio.to_thread(flux, influx.url, query, token, influx.org, influx.timeout_s)
    return parse(rows)
