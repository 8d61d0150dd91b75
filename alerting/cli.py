"""Subcommands of `plantmesh alerting`: `run` and `check-config`."""

from __future__ import annotations

import argparse

from alerting.config import AlertingConfig, load_alerting_config
from alerting.rules import ThresholdRuleConfig
from alerting.service import AlertingService
from plantmesh.cli import Subparsers
from plantmesh.kafka.admin import TopicSetupError
from plantmesh.lifecycle import run_service
from plantmesh.topics import Topics


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "alerting", help="rules over the normalized stream, alert events with evidence"
    )
    commands = parser.add_subparsers(dest="alerting_command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run the alerting service until SIGTERM/SIGINT")
    run.add_argument("--config", required=True, help="alerting YAML file")
    run.set_defaults(func=_run)

    check = commands.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("--config", required=True, help="alerting YAML file")
    check.set_defaults(func=_check_config)


def _run(args: argparse.Namespace) -> int:
    config = load_alerting_config(args.config)
    # A broker that refuses to create the topics will not change its mind: exit 1, not retry.
    return run_service(lambda: AlertingService(config), "alerting", fatal=(TopicSetupError,))


def describe(config: AlertingConfig) -> list[str]:
    topics = Topics(config.namespace)
    lines = [
        f"kafka {config.kafka.bootstrap}, group {config.group_id}: "
        f"{topics.telemetry_normalized} -> {topics.alert_events}",
        f"alert log {config.alert_log}",
        f"{len(config.rules)} rule(s):",
    ]
    for rule in config.rules:
        where = ", ".join(
            part
            for part in (
                f"plants {','.join(rule.plants)}" if rule.plants else "",
                f"machines {','.join(rule.machines)}" if rule.machines else "",
            )
            if part
        )
        if isinstance(rule, ThresholdRuleConfig):
            limit = f"above {rule.above}" if rule.above is not None else f"below {rule.below}"
            what = f"{limit}, deadband {rule.deadband}, on-delay {rule.on_delay_s} s"
        lines.append(
            f"  {rule.name} [{rule.type}, {rule.issue_type}"
            + (f", {rule.severity.value}" if rule.severity is not None else "")
            + f"]: {rule.signal} {what}"
            + (f" ({where})" if where else "")
        )
    return lines


def _check_config(args: argparse.Namespace) -> int:
    config = load_alerting_config(args.config)
    print(f"{args.config}: ok")
    for line in describe(config):
        print(f"  {line}")
    return 0
