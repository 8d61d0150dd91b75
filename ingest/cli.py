"""Subcommands of `plantmesh ingest`: `bridge` and `writer`, each with `--config FILE`, and
`check-config CONFIG [--agent AGENT_CONFIG ...]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ingest.config import load_ingest_config
from plantmesh.cli import Subparsers
from plantmesh.lifecycle import run_service


def _bridge(args: argparse.Namespace) -> int:
    from ingest.bridge import Bridge

    config = load_ingest_config(args.config)
    return run_service(lambda: Bridge(config), "ingest bridge")


def _writer(args: argparse.Namespace) -> int:
    from ingest.writer import Writer

    config = load_ingest_config(args.config)
    return run_service(lambda: Writer(config), "ingest writer")


def _check_config(args: argparse.Namespace) -> int:
    from ingest.check_config import check

    lines, problems = check(args.config, args.agent)
    print("\n".join([*lines, *(f"problem: {p}" for p in problems)]))
    print(f"{len(problems)} problem(s)" if problems else "no problems")
    return 1 if problems else 0


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "ingest", help="MQTT to Kafka bridge and Kafka to InfluxDB writer"
    )
    roles = parser.add_subparsers(dest="ingest_role", metavar="ROLE", required=True)
    for name, handler, text in (
        ("bridge", _bridge, "forward MQTT reading batches and gateway status to Kafka"),
        ("writer", _writer, "write Kafka telemetry.raw to InfluxDB, forward it normalized"),
    ):
        role = roles.add_parser(name, help=text, description=text)
        role.add_argument(
            "--config", required=True, type=Path, metavar="FILE", help="ingest YAML file"
        )
        role.set_defaults(func=handler)
    text = "validate the ingest config and its asset registry against agent configs"
    check = roles.add_parser("check-config", help=text, description=text)
    check.add_argument("config", type=Path, metavar="CONFIG", help="ingest YAML file")
    check.add_argument(
        "--agent",
        type=Path,
        action="append",
        default=[],
        metavar="AGENT_CONFIG",
        help="an agent YAML file whose plant, machines, signals and units the registry must know "
        "(repeatable)",
    )
    check.set_defaults(func=_check_config)
