"""Subcommands of `plantmesh alerting`."""

from __future__ import annotations

from plantmesh.cli import Subparsers


def register(subparsers: Subparsers) -> None:
    subparsers.add_parser(
        "alerting", help="rules over the normalized stream, alert events with evidence"
    )
