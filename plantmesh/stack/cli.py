"""`plantmesh stack up|down|status|logs|env`."""

from __future__ import annotations

from plantmesh.cli import Subparsers


def register(subparsers: Subparsers) -> None:
    subparsers.add_parser("stack", help="provision and run Mosquitto, Kafka and InfluxDB locally")
