"""`plantmesh alerting explain ALERT_ID`: why an alert fired, step by step, reproduced exactly.

Exit 0: the replay reproduced every logged event of the alert byte for byte; 1: it did not (or
the rule changed since and --current was not given, or the input could not be read); 2: usage
or configuration errors (the alert or its rule not found)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError

from alerting.backtest import BacktestError
from alerting.config import AlertingConfig, load_alerting_config
from alerting.evidence import iso
from alerting.explain import (
    ExplainError,
    Replay,
    Verdict,
    compare,
    earliest,
    events_of,
    evidence_items,
    find_rule,
    history_s,
    read_alert_log,
    read_alert_topic,
    replay_file,
    replay_items,
    replay_kafka,
)
from alerting.explain_trace import trace_lines
from plantmesh.cli import Subparsers
from plantmesh.contracts import AlertEvent
from plantmesh.topics import Topics

MAX_FIELDS_SHOWN = 12


def register_explain(commands: Subparsers) -> None:
    explain = commands.add_parser(
        "explain",
        help="why did an alert fire: replay its input through its rule, step by step",
        description="Find the events of ALERT_ID, replay the readings of its asset through a "
        "fresh engine with only its rule, print each decision on its series and whether the "
        "replay reproduces the logged events exactly (exit 0) or not (exit 1).",
    )
    explain.add_argument("alert_id", metavar="ALERT_ID")
    explain.add_argument("--config", required=True, help="alerting YAML file (the rules)")
    source = explain.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--kafka",
        action="store_true",
        help="read the input (and, without --alerts, the alert) from the config's Kafka",
    )
    source.add_argument(
        "--input",
        type=Path,
        metavar="FILE",
        help="JSON lines: ReadingBatch or {machine_class, batch}",
    )
    source.add_argument(
        "--from-evidence",
        action="store_true",
        help="no input left (retention): replay the evidence points (an approximation)",
    )
    explain.add_argument(
        "--alerts", type=Path, metavar="FILE", help="alert log (default: the config's alert_log)"
    )
    explain.add_argument("--topic", help="with --kafka: input topic (default telemetry.normalized)")
    explain.add_argument("--namespace", help="with --kafka: default the config's namespace")
    explain.add_argument(
        "--lookback",
        type=float,
        metavar="SECONDS",
        help="replay from this long before the episode (default: the rule's history)",
    )
    explain.add_argument(
        "--current",
        action="store_true",
        help="explain with the current rule even if it changed since the alert",
    )
    explain.set_defaults(func=_explain)


def _explain(args: argparse.Namespace) -> int:
    misplaced = [f"--{n}" for n in ("topic", "namespace") if getattr(args, n) is not None]
    if not args.kafka and misplaced:
        return _usage(f"{', '.join(misplaced)} only go with --kafka")
    if args.lookback is not None and args.lookback < 0:
        return _usage("--lookback must not be negative")
    config = load_alerting_config(args.config)
    try:
        return _explain_alert(args, config)
    except ExplainError as exc:
        return _usage(str(exc))
    except (BacktestError, KafkaError, OSError) as exc:
        print(f"explain failed: {_reason(exc)}", file=sys.stderr)
        return 1


def _explain_alert(args: argparse.Namespace, config: AlertingConfig) -> int:
    logged, where = _logged(args, config)
    first = logged[0]
    rule = find_rule(config, first)
    print(
        f"alert {first.alert_id}: rule {rule.name} ({rule.type}) on {first.asset.key} {first.signal}"
    )
    print(f"logged in {where}:")
    for event in logged:
        print(f"  {_event_line(event)}")
    if rule.version != first.rule_version:
        print(
            f"the rule changed since: the alert was decided by version {first.rule_version}, "
            f"the configuration has version {rule.version}"
        )
        if not args.current:
            print("not replayed: give --current to explain with the current version")
            return 1
        print("explaining with the current version (--current): the events cannot match exactly")
    replay = Replay(config, rule, first, max(event.at for event in logged))
    lookback = args.lookback if args.lookback is not None else history_s(replay.engine.rules[0])
    since = earliest(logged) - timedelta(seconds=lookback)
    print(_replay_source(args, config, replay, logged, since, lookback))
    _print_trace(replay)
    return _print_verdict(logged, replay, args.from_evidence)


def _logged(args: argparse.Namespace, config: AlertingConfig) -> tuple[list[AlertEvent], str]:
    if args.alerts is None and args.kafka:
        topic = Topics(_namespace(args, config)).alert_events
        events = asyncio.run(read_alert_topic(config, topic))
        where = f"{topic} on {config.kafka.bootstrap}"
    else:
        path = args.alerts if args.alerts is not None else config.alert_log
        events, where = list(read_alert_log(path)), str(path)
    logged = events_of(events, args.alert_id)
    if not logged:
        raise ExplainError(f"alert {args.alert_id} not found in {where}")
    return logged, where


def _namespace(args: argparse.Namespace, config: AlertingConfig) -> str:
    return str(config.namespace if args.namespace is None else args.namespace)


def _replay_source(
    args: argparse.Namespace,
    config: AlertingConfig,
    replay: Replay,
    logged: list[AlertEvent],
    since: datetime,
    lookback: float,
) -> str:
    """Run the replay from the chosen source; return the line that says what was replayed."""
    if args.from_evidence:
        replay_items(replay, evidence_items(logged, replay.rule_config))
        replay.advance(replay.end)
        source = (
            "the evidence points only: APPROXIMATE (no readings between them, gate assumed open)"
        )
    elif args.kafka:
        topic = args.topic or Topics(_namespace(args, config)).telemetry_normalized
        asyncio.run(replay_kafka(replay, topic, since))
        source = f"{topic} on {config.kafka.bootstrap} from {iso(since)} (record time)"
    else:
        replay_file(replay, args.input, since)
        source = f"{args.input} from {iso(since)}"
    reached = replay.engine.newest
    return (
        f"replayed {source}, {lookback:g} s before the episode: {replay.batches} batches, "
        f"{replay.readings} readings of the asset, {replay.others} others (event time only)"
        + (f", event time reached {iso(reached)}" if reached is not None else "")
    )


def _print_trace(replay: Replay) -> None:
    recorder = replay.recorder
    if not recorder.traced:
        print(f"no step-by-step trace for rule type {replay.rule_config.type}")
        return
    print(f"trace of {recorder.series_key}:")
    for line in trace_lines(recorder.rows):
        print(f"  {line}")
    recorder.detach()


def _print_verdict(logged: list[AlertEvent], replay: Replay, approximate: bool) -> int:
    replayed = replay.of_alert()
    print(f"replayed events of {logged[0].alert_id}:")
    for event in replayed:
        print(f"  {_event_line(event)}")
    if not replayed:
        print("  none")
        others = replay.of_series()
        if others:
            print("  (the replay's events on this series:)")
            for event in others:
                print(f"    {event.alert_id} {_event_line(event)}")
            replayed = others
        elif replay.batches == 0:
            print("  no input in the replay window: retention expired? try --from-evidence")
    verdict = compare(logged, replayed)
    prefix = "approximately (from evidence): " if approximate else ""
    if verdict.exact:
        print(f"verdict: {prefix}reproduced exactly ({len(logged)} events, byte for byte)")
        return 0
    print(f"verdict: {prefix}NOT reproduced: {_first_difference(verdict, logged, replayed)}")
    for path, a, b in verdict.fields[:MAX_FIELDS_SHOWN]:
        print(f"  {path}: logged {_shown(a)}, replayed {_shown(b)}")
    if len(verdict.fields) > MAX_FIELDS_SHOWN:
        print(f"  ... {len(verdict.fields) - MAX_FIELDS_SHOWN} more field(s)")
    return 1


def _first_difference(
    verdict: Verdict, logged: list[AlertEvent], replayed: list[AlertEvent]
) -> str:
    index = verdict.index if verdict.index is not None else 0
    if verdict.fields:
        return f"event {index + 1} ({logged[index].kind.value}) differs in {len(verdict.fields)} field(s)"
    if len(replayed) < len(logged):
        return f"the replay has {len(replayed)} of the {len(logged)} logged events"
    return f"the replay has {len(replayed) - len(logged)} event(s) more than logged"


def _shown(value: Any) -> str:
    return "(absent)" if type(value) is object else repr(value)


def _event_line(event: AlertEvent) -> str:
    return (
        f"{event.kind.value:<8} {iso(event.at)}  {event.severity.value:<8} {event.evidence.summary}"
    )


def _usage(message: str) -> int:
    print(f"plantmesh alerting explain: {message}", file=sys.stderr)
    return 2


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__
