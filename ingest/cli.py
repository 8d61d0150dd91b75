"""Subcommands of `plantmesh ingest`."""

from __future__ import annotations

from plantmesh.cli import Subparsers


def register(subparsers: Subparsers) -> None:
    subparsers.add_parser("ingest", help="MQTT to Kafka bridge and Kafka to InfluxDB writer")
