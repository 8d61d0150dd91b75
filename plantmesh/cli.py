"""The `plantmesh` command line.

The shared package knows no service: each service declares a `plantmesh.commands` entry point
whose `register(subparsers)` adds its subcommand. A service whose extra is not installed shows up
with a hint instead of a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

from plantmesh import __version__
from plantmesh.config import ConfigError
from plantmesh.logs import setup_logging

Subparsers = Any  # argparse's _SubParsersAction is private; its type is not worth importing
Register = Callable[[Subparsers], None]
Handler = Callable[[argparse.Namespace], int]

ENTRY_POINT_GROUP = "plantmesh.commands"
EXTRA_FOR = {"agent": "edge", "ingest": "ingest", "alerting": "alerting", "sim": "sim"}


def _missing_extra(name: str, error: Exception) -> Register:
    extra = EXTRA_FOR.get(name, name)

    def register(subparsers: Subparsers) -> None:
        parser = subparsers.add_parser(
            name, help=f"(not installed: pip install 'plantmesh[{extra}]')"
        )
        parser.add_argument("rest", nargs=argparse.REMAINDER)

        def fail(_: argparse.Namespace) -> int:
            print(
                f"plantmesh {name}: this part is not installed ({error}).\n"
                f"Install it with: pip install 'plantmesh[{extra}]'",
                file=sys.stderr,
            )
            return 2

        parser.set_defaults(func=fail)

    return register


def _plugins() -> list[tuple[str, Register]]:
    found: list[tuple[str, Register]] = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            found.append((ep.name, ep.load()))
        except ImportError as exc:
            found.append((ep.name, _missing_extra(ep.name, exc)))
    return found


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level",
        default=os.environ.get("PLANTMESH_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
    )
    parser.add_argument(
        "--log-format",
        default=os.environ.get("PLANTMESH_LOG_FORMAT", "text"),
        choices=["text", "json"],
        help="json for services under systemd or in containers",
    )


def build_parser(
    registers: Sequence[tuple[str, Register]] | None = None,
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plantmesh", description="Edge-to-cloud machine telemetry and alerting."
    )
    parser.add_argument("--version", action="version", version=f"plantmesh {__version__}")
    add_common_options(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    from plantmesh.demo import register as register_demo
    from plantmesh.query import register as register_query
    from plantmesh.stack.cli import register as register_stack

    register_stack(subparsers)
    register_demo(subparsers)
    register_query(subparsers)
    for _, register in registers if registers is not None else _plugins():
        register(subparsers)
    return parser


def dispatch(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "func", None)
    if handler is None:
        parser.print_help()
        return 2
    setup_logging(args.log_level, args.log_format)
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch(build_parser(), argv)


def service_main(name: str, register: Register, argv: Sequence[str] | None = None) -> int:
    """`python -m <service> ...` is `plantmesh <name> ...` without the other services."""
    parser = argparse.ArgumentParser(prog="plantmesh")
    add_common_options(parser)
    register(parser.add_subparsers(dest="command", metavar="COMMAND"))
    return dispatch(parser, [name, *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
