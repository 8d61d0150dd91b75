"""Subcommands of `plantmesh alerting`: `run`, `check-config`, `backtest`, `explain`,
`baseline`, `db`, `alarms`, `token` and `incidents`; and `plantmesh alerts`, `plantmesh
incidents` and `plantmesh scorecard`, the alarm API's clients."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

from aiokafka.errors import KafkaError

from alerting.alarm_service.cli import register_alarms
from alerting.api.client_cli import register_alerts
from alerting.api.incidents_cli import register_incidents_client
from alerting.backtest import Backtest, BacktestError, Progress, read_jsonl, read_kafka, summarize
from alerting.commands_cli import register_baseline
from alerting.config import AlertingConfig, load_alerting_config
from alerting.explain_cli import register_explain
from alerting.incidents.cli import register_incidents
from alerting.records.cli import register_db
from alerting.rules import RuleConfig, RuleConfigBase, ThresholdRuleConfig
from alerting.scorecards.cli import register_scorecard
from alerting.service import AlertingService
from alerting.times import when
from plantmesh.cli import Subparsers
from plantmesh.contracts import AlertEvent, encode
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
    check.add_argument("--registry", type=Path, help="asset registry to check (the writer's)")
    check.add_argument(
        "--agent",
        type=Path,
        action="append",
        default=[],
        metavar="AGENT_CONFIG",
        help="an agent YAML file whose plant, machines, signals and units the registry and the "
        "rules must know (repeatable)",
    )
    check.set_defaults(func=_check_config)
    _register_backtest(commands)
    register_explain(commands)
    register_baseline(commands)
    register_db(commands)
    register_alarms(commands)
    register_incidents(commands)
    register_alerts(subparsers)
    register_incidents_client(subparsers)
    register_scorecard(subparsers)


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
        else:
            what = _settings(rule)
        lines.append(
            f"  {rule.name} [{rule.type}, {rule.issue_type}"
            + (f", {rule.severity.value}" if rule.severity is not None else "")
            + f"]: {rule.signal} {what}"
            + (f" ({where})" if where else "")
        )
    return lines


def _settings(rule: RuleConfig) -> str:
    """The keys of a rule's own type, as `key value` pairs (the shared ones are shown apart)."""
    shared = set(RuleConfigBase.model_fields) | {"type"}
    own = rule.model_dump(exclude=shared, exclude_none=True)
    return ", ".join(f"{key} {value}" for key, value in own.items())


def _check_config(args: argparse.Namespace) -> int:
    from alerting.check_config import check_against

    config = load_alerting_config(args.config)
    print(f"{args.config}: ok")
    for line in describe(config):
        print(f"  {line}")
    if args.registry is None and not args.agent:
        return 0
    lines, problems = check_against(config, args.config, args.registry, args.agent)
    print("\n".join([*lines, *(f"problem: {p}" for p in problems)]))
    print(f"{len(problems)} problem(s)" if problems else "no problems")
    return 1 if problems else 0


# --- backtest -----------------------------------------------------------------------------------
def _register_backtest(commands: Subparsers) -> None:
    backtest = commands.add_parser(
        "backtest",
        help="replay recorded readings through a configuration, offline",
        description="Replay recorded normalized batches through the rules of --config and "
        "write the alert events they give. Nothing is committed, published or paged.",
    )
    backtest.add_argument("--config", required=True, help="alerting YAML file (the rules)")
    source = backtest.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--kafka",
        action="store_true",
        help="read a topic (default <namespace>.telemetry.normalized) from the config's Kafka",
    )
    source.add_argument(
        "--input",
        type=Path,
        metavar="FILE",
        help="JSON lines: ReadingBatch or {machine_class, batch}",
    )
    backtest.add_argument("--topic", help="with --kafka: the topic to read")
    backtest.add_argument("--namespace", help="with --kafka: default the config's namespace")
    backtest.add_argument(
        "--since",
        type=when,
        help="with --kafka: from this record time: ISO (UTC unless it says), or ago: 10m, 2h, 1d",
    )
    backtest.add_argument("--until", type=when, help="with --kafka: before this record time")
    backtest.add_argument("--out", type=Path, help="write the alert log here (JSON lines)")
    backtest.add_argument(
        "--truth", type=Path, help="a simulator truth file: print how to score --out against it"
    )
    backtest.add_argument(
        "--advance-every",
        type=int,
        default=1,
        metavar="N",
        help="advance event time after every N batches (the service: after every poll)",
    )
    backtest.set_defaults(func=_backtest)


def _backtest(args: argparse.Namespace) -> int:
    kafka_only = [f"--{name}" for name in ("topic", "namespace", "since", "until")]
    misplaced = [flag for flag in kafka_only if getattr(args, flag[2:]) is not None]
    if not args.kafka and misplaced:
        return _usage(f"{', '.join(misplaced)} only go with --kafka")
    if args.truth is not None and args.out is None:
        return _usage("--truth needs --out (the alert log to score)")
    if args.advance_every < 1:
        return _usage("--advance-every must be at least 1")
    config = load_alerting_config(args.config)
    run = Backtest(config, advance_every=args.advance_every, progress=Progress(sys.stderr))
    skipped: Counter[str] = Counter()
    try:
        if args.kafka:
            namespace = config.namespace if args.namespace is None else args.namespace
            topic = args.topic or Topics(namespace).telemetry_normalized
            source = f"{topic} on {config.kafka.bootstrap}"
            asyncio.run(_replay_kafka(run, config, topic, args.since, args.until, skipped))
        else:
            source = str(args.input)
            for batch, machine_class in read_jsonl(args.input):
                run.feed(batch, machine_class)
        events = run.finish()
        if args.out is not None:
            _write_alert_log(args.out, events)
    except (BacktestError, KafkaError, OSError) as exc:
        print(f"backtest failed: {_reason(exc)}", file=sys.stderr)
        return 1
    _print_summary(args, run, source, skipped)
    return 0


def _usage(message: str) -> int:
    print(f"plantmesh alerting backtest: {message}", file=sys.stderr)
    return 2


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


async def _replay_kafka(
    run: Backtest,
    config: AlertingConfig,
    topic: str,
    since: datetime | None,
    until: datetime | None,
    skipped: Counter[str],
) -> None:
    async for batch, machine_class in read_kafka(config, topic, since, until, skipped=skipped):
        run.feed(batch, machine_class)


def _write_alert_log(path: Path, events: list[AlertEvent]) -> None:
    """The alert log as the service writes it (a fresh file: a backtest is a whole run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        for event in events:
            file.write(encode(event) + b"\n")


def _print_summary(
    args: argparse.Namespace, run: Backtest, source: str, skipped: Counter[str]
) -> None:
    p = run.progress
    print(f"backtest of {args.config} on {source}")
    undecodable = sum(skipped.values())
    print(
        f"{p.batches} batches, {p.readings} readings"
        + (f", {undecodable} undecodable skipped ({_counts(skipped)})" if undecodable else "")
    )
    if run.engine.newest is not None:
        print(f"event time reached {run.engine.newest.isoformat()}")
    kinds = Counter(event.kind.value for event in run.events)
    print(f"{kinds['raised']} raised, {kinds['cleared']} cleared")
    if run.engine.rule_errors:
        print(f"{run.engine.rule_errors} rule error(s): see the log")
    if run.events:
        for line in summarize(run.events):
            print(f"  {line}")
    if args.out is not None:
        print(f"alert log: {args.out} ({len(run.events)} events)")
    if args.truth is not None:
        print(f"score it: plantmesh sim score --alerts {args.out} --truth {args.truth}")


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {count}" for key, count in sorted(counter.items()))
