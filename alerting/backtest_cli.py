"""`plantmesh alerts backtest`: new or changed rules over the history in InfluxDB, offline.

    plantmesh alerts backtest --rules FILE --from T1 [--to T2] [--truth FILE] [--registry FILE]
        [--influx-url URL] [--database DB] [--measurement readings] [--plant P ...]
        [--out FILE] [--json] [--grace S]

The rules run through the same engine as the service, on the readings of [T1, T2) read back in
source-time order (alerting.backtest_influx). Nothing is published, committed or paged. The
report: what would have been raised, the ISA-18.2 alarm load, and with --truth (a simulator's
ground truth) precision, recall and detection latency. Exit 0; 2 for unusable arguments or
files; 1 when InfluxDB fails."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerting.backtest import Progress
from alerting.backtest_influx import HistoryQuery
from alerting.backtest_report import format_report
from alerting.backtest_run import run_history_backtest
from alerting.config import load_alerting_config
from alerting.times import when
from plantmesh.cli import Subparsers
from plantmesh.config import ConfigError
from plantmesh.connections import DEFAULT_INFLUX_URL, InfluxConnection
from plantmesh.contracts import encode
from plantmesh.fleet import Fleet
from plantmesh.influxql import InfluxQueryError
from plantmesh.scoring.truth import TruthRecord, read_truth

DEFAULT_DATABASE = "plantmesh"  # as `plantmesh query`


def register_history_backtest(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "backtest",
        help="run rules over the history in InfluxDB: what they would have raised",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--rules",
        required=True,
        type=Path,
        metavar="FILE",
        help="alerting YAML (as `plantmesh alerting run --config`), or one with only rules:",
    )
    parser.add_argument(
        "--from",
        dest="start",
        required=True,
        type=when,
        metavar="T1",
        help="from this source time: ISO (UTC unless it says) or ago: 10m, 2h, 1d",
    )
    parser.add_argument(
        "--to", dest="end", type=when, metavar="T2", help="before this source time (default now)"
    )
    parser.add_argument("--truth", type=Path, help="a simulator truth file: precision, recall")
    parser.add_argument("--grace", type=float, default=60.0, metavar="S", help="truth grace (60)")
    parser.add_argument("--registry", type=Path, help="asset registry: machine classes")
    parser.add_argument(
        "--influx-url", default=os.environ.get("PLANTMESH_INFLUX_URL") or DEFAULT_INFLUX_URL
    )
    parser.add_argument("--database", "--db", default=DEFAULT_DATABASE, help="InfluxQL database")
    parser.add_argument("--measurement", default="readings")
    parser.add_argument("--plant", action="append", default=[], help="only this plant (repeat)")
    parser.add_argument("--out", type=Path, help="write the alert events here (JSON lines)")
    # SUPPRESS: `plantmesh alerts --json backtest` (the parent's flag) works as well.
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    parser.add_argument("--max-rows", type=int, default=10_000, help="rows per InfluxDB query")
    parser.set_defaults(func=_backtest)


def _usage(message: str) -> int:
    print(f"plantmesh alerts backtest: {message}", file=sys.stderr)
    return 2


def _backtest(args: argparse.Namespace) -> int:
    end: datetime = args.end or datetime.now(UTC)
    if args.start >= end:
        return _usage(f"--from ({args.start.isoformat()}) must be before --to ({end.isoformat()})")
    if args.max_rows < 1 or args.grace < 0:
        return _usage("--max-rows must be at least 1 and --grace not negative")
    try:
        config = load_alerting_config(args.rules)
        fleet = Fleet.load(args.registry) if args.registry is not None else None
        truth = read_truth(args.truth, TruthRecord) if args.truth is not None else None
        influx = InfluxConnection(url=args.influx_url, bucket=f"{args.database}/autogen")
    except (ConfigError, ValueError) as exc:  # TruthFileError and pydantic's are ValueErrors
        return _usage(str(exc))
    except OSError as exc:
        return _usage(f"{exc.filename}: {exc.strerror}")
    history = HistoryQuery(
        influx, args.measurement, plants=tuple(args.plant), max_rows=args.max_rows
    )
    try:
        done = run_history_backtest(
            config,
            history,
            args.start,
            end,
            fleet=fleet,
            truth=truth,
            grace=timedelta(seconds=args.grace),
            progress=Progress(sys.stderr),
        )
        if args.out is not None:  # the service's alert-log format, a fresh file: a whole run
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_bytes(b"".join(encode(event) + b"\n" for event in done.events))
    except InfluxQueryError as exc:
        print(f"backtest failed: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"backtest failed: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    if getattr(args, "json", False):
        print(json.dumps(done.report.model_dump(mode="json"), indent=2))
    else:
        print("\n".join(format_report(done.report)))
        if args.out is not None:
            print(f"alert events: {args.out} ({len(done.events)})")
    return 0
