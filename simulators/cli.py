"""Subcommands of `plantmesh sim`."""

from __future__ import annotations

from plantmesh.cli import Subparsers


def register(subparsers: Subparsers) -> None:
    subparsers.add_parser("sim", help="simulated plants serving OPC UA and Modbus TCP")
