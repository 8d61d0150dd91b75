"""`plantmesh query`: the questions engineers ask most, over InfluxQL or Flux, plus raw queries.

    plantmesh query last --plant plant-a [--machine press-01]      last value of every signal
    plantmesh query series --signal bearing_temp --since 1h --every 1m [--plant P] [--machine M]
    plantmesh query completeness [--plant P]                          batches expected/received
    plantmesh query influxql "SELECT ..."                             any InfluxQL statement
    plantmesh query flux 'from(bucket: "plantmesh/autogen") |> ...'   any Flux query
    plantmesh query --flux last ...                                   the same questions in Flux

Standard library only (plantmesh.influxql): it works wherever plantmesh is installed. The schema
it reads is documented in docs/ingest.md. Credentials: --token-file (a file whose first line is
`user:password` on InfluxDB 1.8), default $PLANTMESH_INFLUX_TOKEN_FILE, else
$PLANTMESH_INFLUX_TOKEN; a read-only user is enough (the local stack's `reader`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plantmesh.cli import Subparsers
from plantmesh.connections import DEFAULT_INFLUX_URL, InfluxConnection
from plantmesh.influxql import InfluxQueryError, Series, flux, query

DURATION = re.compile(r"^[1-9][0-9]*(ns|us|ms|s|m|h|d|w)$")
DEFAULT_DATABASE = "plantmesh"


def _duration(text: str) -> str:
    if not DURATION.match(text):
        raise argparse.ArgumentTypeError(
            f"expected a duration like 30s, 15m, 1h or 7d, got {text!r}"
        )
    return text


def _literal(text: str) -> str:
    """An InfluxQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _flux_string(text: str) -> str:
    return json.dumps(text)  # Flux string literals escape like JSON's


def _where(args: argparse.Namespace, *names: str) -> list[str]:
    return [f"{name} = {_literal(getattr(args, name))}" for name in names if getattr(args, name)]


def _flux_filters(args: argparse.Namespace, *names: str) -> str:
    return "".join(
        f" |> filter(fn: (r) => r.{name} == {_flux_string(getattr(args, name))})"
        for name in names
        if getattr(args, name)
    )


# --- the questions, in both languages ---------------------------------------------------------
def influxql_for(args: argparse.Namespace) -> str:
    if args.question == "last":
        where = _where(args, "plant", "machine", "signal")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return f"SELECT last(value) AS value FROM readings{clause} GROUP BY plant, machine, signal"
    if args.question == "series":
        where = [f"signal = {_literal(args.signal)}", *_where(args, "plant", "machine")]
        where.append(f"time > now() - {args.since}")
        if args.every:
            return (
                f"SELECT mean(value) AS mean, min(value) AS min, max(value) AS max FROM readings "
                f"WHERE {' AND '.join(where)} GROUP BY time({args.every}), plant, machine fill(none)"
            )
        return (
            f"SELECT value, unit FROM readings WHERE {' AND '.join(where)} GROUP BY plant, machine"
        )
    if args.question == "completeness":
        where = _where(args, "plant")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        latest = (
            "SELECT last(batches_expected) AS expected, last(batches_received) AS received, "
            "last(duplicates) AS duplicates, last(open_gaps) AS open_gaps "
            f"FROM completeness{clause} GROUP BY plant, gateway"
        )
        return (
            "SELECT sum(expected) AS expected, sum(received) AS received, "
            "sum(duplicates) AS duplicates, sum(open_gaps) AS open_gaps "
            f"FROM ({latest}) GROUP BY plant"
        )
    raise ValueError(args.question)


def flux_for(args: argparse.Namespace) -> str:
    source = f"from(bucket: {_flux_string(args.bucket)})"
    if args.question == "last":
        return (
            f"{source} |> range(start: -{args.since})"
            ' |> filter(fn: (r) => r._measurement == "readings" and r._field == "value")'
            f"{_flux_filters(args, 'plant', 'machine', 'signal')}"
            ' |> group(columns: ["plant", "machine", "signal"]) |> last()'
        )
    if args.question == "series":
        tail = (
            f" |> aggregateWindow(every: {args.every}, fn: mean, createEmpty: false)"
            if args.every
            else ""
        )
        return (
            f"{source} |> range(start: -{args.since})"
            ' |> filter(fn: (r) => r._measurement == "readings" and r._field == "value")'
            f" |> filter(fn: (r) => r.signal == {_flux_string(args.signal)})"
            f"{_flux_filters(args, 'plant', 'machine')}"
            f' |> group(columns: ["plant", "machine"]){tail}'
        )
    if args.question == "completeness":
        return (
            f"{source} |> range(start: -{args.since})"
            ' |> filter(fn: (r) => r._measurement == "completeness")'
            f"{_flux_filters(args, 'plant')}"
            ' |> filter(fn: (r) => r._field == "batches_expected" or r._field == "batches_received"'
            ' or r._field == "duplicates" or r._field == "open_gaps")'
            ' |> group(columns: ["plant", "gateway", "_field"]) |> last()'
            ' |> group(columns: ["plant", "_field"]) |> sum()'
            ' |> pivot(rowKey: ["plant"], columnKey: ["_field"], valueColumn: "_value")'
        )
    raise ValueError(args.question)


# --- printing ---------------------------------------------------------------------------------
def _cell(column: str, value: Any) -> str:
    if column == "time" and isinstance(value, int):
        return datetime.fromtimestamp(value / 1e9, UTC).isoformat(timespec="milliseconds")
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _table(columns: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def render_influxql(series: list[Series], as_json: bool) -> str:
    if as_json:
        return json.dumps(
            [{"name": s.name, "tags": s.tags, "rows": s.rows()} for s in series], indent=2
        )
    # Flatten: the group-by tags become leading columns, so one table answers the question.
    tag_names = sorted({k for s in series for k in s.tags})
    columns: list[str] = []
    for s in series:
        columns += [c for c in s.columns if c not in columns]
    rows = [
        [s.tags.get(t, "") for t in tag_names]
        + [_cell(c, row[s.columns.index(c)] if c in s.columns else None) for c in columns]
        for s in series
        for row in s.values
    ]
    if not rows:
        return "(no data)"
    return _table(tag_names + columns, rows)


def render_flux(rows: list[dict[str, str]], as_json: bool) -> str:
    if as_json:
        return json.dumps(rows, indent=2)
    if not rows:
        return "(no data)"
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    return _table(columns, [[row.get(c, "") for c in columns] for row in rows])


# --- the command ------------------------------------------------------------------------------
def token_of(args: argparse.Namespace) -> str:
    """--token or --token-file, else the environment's (as every InfluxConnection)."""
    connection = InfluxConnection(url=args.url, token=args.token, token_file=args.token_file)
    return connection.token_value()


def run(args: argparse.Namespace) -> int:
    try:
        token = token_of(args)
    except ValueError as exc:  # pydantic's ValidationError is one too
        print(f"plantmesh query: {exc}", file=sys.stderr)
        return 2
    try:
        if args.question == "flux" or (args.flux and args.question != "influxql"):
            text = args.text if args.question == "flux" else flux_for(args)
            if args.show:
                print(text, file=sys.stderr)
            print(render_flux(flux(args.url, text, token, timeout_s=args.timeout), args.json))
        else:
            text = args.text if args.question == "influxql" else influxql_for(args)
            if args.show:
                print(text, file=sys.stderr)
            result = query(args.url, args.database, text, timeout_s=args.timeout, token=token)
            print(render_influxql(result, args.json))
    except InfluxQueryError as exc:
        print(f"plantmesh query: {exc}", file=sys.stderr)
        return 1
    return 0


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "query",
        help="ask InfluxDB: last values, a signal over time, completeness, or any query",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--url", default=os.environ.get("PLANTMESH_INFLUX_URL") or DEFAULT_INFLUX_URL
    )
    parser.add_argument(
        "--database", "--db", default=DEFAULT_DATABASE, help="InfluxQL database (default plantmesh)"
    )
    parser.add_argument("--bucket", default=None, help="Flux bucket (default <database>/autogen)")
    parser.add_argument(
        "--token-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="a file whose first line is the token (InfluxDB 1.8: user:password); "
        "default $PLANTMESH_INFLUX_TOKEN_FILE",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="the token itself (visible to other users in `ps`: prefer --token-file); "
        "default $PLANTMESH_INFLUX_TOKEN",
    )
    parser.add_argument("--flux", action="store_true", help="ask in Flux instead of InfluxQL")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--show", action="store_true", help="print the query on stderr")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S")
    questions = parser.add_subparsers(dest="question", metavar="QUESTION", required=True)

    last = questions.add_parser("last", help="the last value of each signal of each machine")
    series = questions.add_parser("series", help="one signal over a window, optionally downsampled")
    series.add_argument("--signal", required=True)
    series.add_argument("--every", type=_duration, help="downsample: mean/min/max per window")
    completeness = questions.add_parser(
        "completeness", help="batches expected, received, duplicated; open gaps, per plant"
    )
    for sub in (last, series, completeness):
        sub.add_argument("--plant")
        sub.add_argument("--since", type=_duration, default="1h", help="how far back (default 1h)")
    for sub in (last, series):
        sub.add_argument("--machine")
    last.add_argument("--signal")
    raw_influxql = questions.add_parser("influxql", help="run an InfluxQL statement")
    raw_influxql.add_argument("text", metavar="STATEMENT")
    raw_flux = questions.add_parser("flux", help="run a Flux query")
    raw_flux.add_argument("text", metavar="QUERY")
    parser.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    if args.bucket is None:
        args.bucket = f"{args.database}/autogen"
    for name in ("plant", "machine", "signal"):
        if not hasattr(args, name):
            setattr(args, name, None)
    return run(args)
