"""`plantmesh query`'s command line: its options, before or after the question, and the run."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

from plantmesh.cli import Subparsers
from plantmesh.connections import DEFAULT_INFLUX_URL, InfluxConnection
from plantmesh.influxql import InfluxQueryError, Series, flux, query
from plantmesh.query import answers, hints, statements
from plantmesh.query.formats import FORMATS, Table, render
from plantmesh.query.statements import Question

DURATION = re.compile(r"^[1-9][0-9]*(ns|us|ms|s|m|h|d|w)$")
DEFAULT_DATABASE = "plantmesh"
QUESTIONS = ("last", "series", "completeness")


def duration(text: str) -> str:
    if not DURATION.match(text):
        raise argparse.ArgumentTypeError(
            f"expected a duration like 30s, 15m, 1h or 7d, got {text!r}"
        )
    return text


def add_common_options(parser: argparse.ArgumentParser, *, with_defaults: bool) -> None:
    """The options every question takes. They are declared on `query` and again on each
    question, the copies without defaults (SUPPRESS), so that `query --db X last` and
    `query last --db X` both work and a question never resets what came before it."""

    def default(value: Any) -> Any:
        return value if with_defaults else argparse.SUPPRESS

    parser.add_argument(
        "--url", default=default(None), help="InfluxDB (default $PLANTMESH_INFLUX_URL, "
        f"else {DEFAULT_INFLUX_URL})"
    )  # fmt: skip
    parser.add_argument(
        "--database", "--db", default=default(None), metavar="DB",
        help=f"InfluxQL database (default {DEFAULT_DATABASE})",
    )  # fmt: skip
    parser.add_argument(
        "--bucket", default=default(None), help="Flux bucket (default <database>/autogen)"
    )
    parser.add_argument(
        "--token-file", type=Path, default=default(None), metavar="FILE",
        help="a file whose first line is the token (InfluxDB 1.8: user:password); "
        "default $PLANTMESH_INFLUX_TOKEN_FILE",
    )  # fmt: skip
    parser.add_argument(
        "--token", default=default(None),
        help="the token itself (visible to other users in `ps`: prefer --token-file); "
        "default $PLANTMESH_INFLUX_TOKEN",
    )  # fmt: skip
    parser.add_argument(
        "--format", choices=FORMATS, default=default("table"),
        help="table (default), csv with a header, or json (a list of objects)",
    )  # fmt: skip
    parser.add_argument(
        "--json", dest="format", action="store_const", const="json",
        default=argparse.SUPPRESS, help="the same as --format json",
    )  # fmt: skip
    parser.add_argument(
        "--flux", action="store_true", default=default(False), help="ask in Flux, not InfluxQL"
    )
    parser.add_argument(
        "--show", action="store_true", default=default(False), help="print queries on stderr"
    )
    parser.add_argument("--timeout", type=float, default=default(30.0), metavar="S")


def _filters(parser: argparse.ArgumentParser, *, machine: bool = True) -> None:
    parser.add_argument("--plant")
    if machine:
        parser.add_argument("--machine")


def register(subparsers: Subparsers) -> None:
    from plantmesh import query as package

    parser = subparsers.add_parser(
        "query",
        help="ask InfluxDB: last values, a signal over time, completeness, or any query",
        description=(package.__doc__ or "").split("\n\n")[0],
    )
    add_common_options(parser, with_defaults=True)
    questions = parser.add_subparsers(dest="question", metavar="QUESTION", required=True)

    def question(name: str, help: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = questions.add_parser(name, help=help, description=help)
        add_common_options(sub, with_defaults=False)
        return sub

    last = question("last", "the newest reading of each signal of each machine, Bad ones too")
    _filters(last)
    last.add_argument("--signal")
    last.add_argument("--since", type=duration, default="1h", help="how far back (default 1h)")
    series = question("series", "one signal over a window, optionally downsampled")
    _filters(series)
    series.add_argument("--signal", required=True)
    series.add_argument("--since", type=duration, default="1h", help="how far back (default 1h)")
    series.add_argument("--every", type=duration, help="downsample: mean/min/max per window")
    completeness = question(
        "completeness", "per gateway and plant: batches expected, received, missing, duplicated"
    )
    _filters(completeness, machine=False)
    completeness.add_argument(
        "--since", type=duration, default=None,
        help="only figures written this recently (default: the latest of each gateway, however old)",
    )  # fmt: skip
    question("influxql", "run an InfluxQL statement").add_argument("text", metavar="STATEMENT")
    question("flux", "run a Flux query").add_argument("text", metavar="QUERY")
    parser.set_defaults(func=run)


def question_of(args: argparse.Namespace) -> Question | None:
    if args.question not in QUESTIONS:
        return None
    return Question(
        name=args.question,
        plant=getattr(args, "plant", None),
        machine=getattr(args, "machine", None),
        signal=getattr(args, "signal", None),
        since=getattr(args, "since", None),
        every=getattr(args, "every", None),
    )


def _resolve(args: argparse.Namespace) -> None:
    """Defaults that depend on the environment or on another option, decided at run time."""
    args.url = args.url or os.environ.get("PLANTMESH_INFLUX_URL") or DEFAULT_INFLUX_URL
    args.database = args.database or DEFAULT_DATABASE
    args.bucket = args.bucket or f"{args.database}/autogen"


def _say(lines: list[str], prefix: str) -> None:
    for line in lines:
        print(f"{prefix}{line}", file=sys.stderr)


def _ask(
    args: argparse.Namespace,
    q: Question | None,
    use_flux: bool,
    run_influxql: answers.RunInfluxQL,
    run_flux: answers.RunFlux,
) -> Table:
    if q is None:
        if use_flux:
            return answers.flatten_flux(run_flux(args.text))
        return answers.flatten_influxql(run_influxql(args.text))
    if use_flux:
        return answers.answer_flux(q, statements.flux(q, args.bucket), run_flux)
    return answers.answer_influxql(q, statements.influxql(q), run_influxql)


def run(args: argparse.Namespace) -> int:
    _resolve(args)
    try:
        token = InfluxConnection(
            url=args.url, token=args.token, token_file=args.token_file
        ).token_value()
    except ValueError as exc:  # pydantic's ValidationError is one too
        print(f"plantmesh query: {exc}", file=sys.stderr)
        return 2

    def show(database: str, text: str) -> list[Series]:
        return query(args.url, database, text, timeout_s=args.timeout, token=token)

    def run_influxql(text: str) -> list[Series]:
        if args.show:
            print(text, file=sys.stderr)
        return show(args.database, text)

    def run_flux(text: str) -> list[dict[str, str]]:
        if args.show:
            print(text, file=sys.stderr)
        return flux(args.url, text, token, timeout_s=args.timeout)

    q = question_of(args)
    use_flux = args.question == "flux" or (args.flux and args.question != "influxql")
    try:
        table = _ask(args, q, use_flux, run_influxql, run_flux)
    except InfluxQueryError as exc:
        print(f"plantmesh query: {exc}", file=sys.stderr)
        if args.question != "flux":
            _say([m] if (m := hints.missing_database(show, args.database)) else [], "hint: ")
        return 1
    print(render(table, args.format))
    if not table.rows:
        if args.question == "flux":
            _say(["no rows (the bucket and filters are in the query)"], "hint: ")
        else:
            bucket = args.bucket if use_flux else None
            _say(hints.no_data_hints(show, q, args.database, bucket), "hint: ")
    return 0
