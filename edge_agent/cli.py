"""Subcommands of `plantmesh agent`."""

from __future__ import annotations

from plantmesh.cli import Subparsers


def register(subparsers: Subparsers) -> None:
    subparsers.add_parser(
        "agent", help="reads PLCs over OPC UA and Modbus and publishes reading batches to MQTT"
    )
