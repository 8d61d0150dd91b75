"""`plantmesh alerting incidents --config F`: the network-incident stage."""

from __future__ import annotations

import argparse

from alerting.catalogue import load_catalogue
from alerting.incidents.policy import load_correlation
from alerting.incidents.stage import IncidentStage
from alerting.incidents.stage_config import load_incidents_config
from plantmesh.cli import Subparsers
from plantmesh.fleet import Fleet
from plantmesh.kafka.admin import TopicSetupError
from plantmesh.lifecycle import run_service


def register_incidents(commands: Subparsers) -> None:
    incidents = commands.add_parser(
        "incidents",
        help="run the network-incident stage: the same issue on one machine class in several "
        "plants, as one incident",
    )
    incidents.add_argument("--config", required=True, help="incident stage YAML file")
    incidents.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    # Every file read before anything starts: a mistake is a configuration error (exit 2).
    config = load_incidents_config(args.config)
    known = load_catalogue(config.catalogue).issue_types
    policy = load_correlation(config.correlation, known)
    fleet = Fleet([]) if config.registry is None else Fleet.load(config.registry)
    # A broker that refuses to create the topics will not change its mind: exit 1, not retry.
    return run_service(
        lambda: IncidentStage(config, policy, fleet), "incidents", fatal=(TopicSetupError,)
    )
