"""`plantmesh scorecard`: the plants side by side over a period, from the alarm API (the same
--api/PLANTMESH_API_URL and --token/PLANTMESH_API_TOKEN as `plantmesh alerts`): the caller's
plants only. `--csv FILE` (or `-`) exports the table; `--trend N` adds N points per plant."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from alerting.api.client_cli import DEFAULT_API, call_api
from alerting.scorecards.source import ScorecardReport
from alerting.scorecards.table import cell, csv_text, text_table
from alerting.times import when
from plantmesh.cli import Subparsers


def register_scorecard(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "scorecard",
        help="plants side by side: alarm load, floods, response times, completeness",
        description="Each plant's alarm-management figures over a period, with the same "
        "formulas for every plant (ISA-18.2, EEMUA 191), the worst of each row marked.",
    )
    parser.add_argument("--api", default=os.environ.get("PLANTMESH_API_URL", DEFAULT_API))
    parser.add_argument("--token", default=os.environ.get("PLANTMESH_API_TOKEN"))
    parser.add_argument("--since", default="24h", help="ISO time or ago: 30m, 24h, 7d")
    parser.add_argument("--until", help="ISO time or ago (default: now)")
    parser.add_argument("--plant", help="one plant only")
    parser.add_argument("--trend", type=int, default=0, metavar="N", help="N points per plant")
    parser.add_argument("--csv", metavar="FILE", help="write the table as CSV (- for stdout)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON")
    parser.set_defaults(func=_scorecard)


def _scorecard(args: argparse.Namespace) -> int:
    try:
        params: dict[str, Any] = {"since": when(args.since).isoformat(), "buckets": args.trend}
        if args.until:
            params["until"] = when(args.until).isoformat()
    except argparse.ArgumentTypeError as exc:
        print(f"scorecard: {exc}", file=sys.stderr)
        return 2
    if args.plant:
        params["plant"] = args.plant
    answer = call_api(args, "GET", "/scorecards", params=params)
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    made = ScorecardReport.model_validate(answer)
    if args.csv == "-":
        print(csv_text(made.plants), end="")
        return 0
    print(f"scorecards {made.start.isoformat()} .. {made.end.isoformat()}")
    print(text_table(made.plants) if made.plants else "(no plants with alarms or data)")
    if made.completeness_source != "ledger":
        print(f"data completeness: {made.completeness_source}")
    if args.trend:
        print()
        print(_trend(made))
    if args.csv:
        Path(args.csv).write_text(csv_text(made.plants))
        print(f"wrote {args.csv}")
    return 0


def _trend(made: ScorecardReport) -> str:
    lines = [
        f"{'plant':<12} {'from':<20} {'alarms':>6} {'peak':>5} {'flood':>6} "
        f"{'tta p50':>8} {'in time':>8} {'complete':>8}"
    ]
    for plant, points in made.trend.items():
        for point in points:
            c = point.scorecard
            lines.append(
                f"{plant:<12} {point.start:%Y-%m-%d %H:%M}     {c.alarms:>6} {c.peak_10min:>5} "
                f"{cell(c.flood_time_pct, '%'):>6} {cell(c.tta_p50_s, ' s'):>8} "
                f"{cell(c.acked_in_time_pct, '%'):>8} {cell(c.completeness_pct, '%'):>8}"
            )
    return "\n".join(lines)
