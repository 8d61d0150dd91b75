"""`plantmesh demo`: three simulated plants through the whole pipeline, then a per-plant table."""

from __future__ import annotations

from plantmesh.cli import Subparsers


def register(subparsers: Subparsers) -> None:
    subparsers.add_parser("demo", help="run the multi-plant demo")
