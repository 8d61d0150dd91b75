"""`plantmesh alerting baseline freeze|relearn|reset`: send a baseline command to every running
alerting process (alerting/commands.py)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import UTC, datetime

from aiokafka.errors import KafkaError

from alerting.commands import BaselineCommand, send
from alerting.config import load_alerting_config
from plantmesh.cli import Subparsers
from plantmesh.kafka.admin import TopicSetupError, ensure_topics
from plantmesh.topics import Topics


def register_baseline(commands: Subparsers) -> None:
    baseline = commands.add_parser(
        "baseline",
        help="freeze, relearn or reset the SPC baseline of a series in the running services",
        description="Freeze (stop adaptive relearning), relearn (learn again from the next "
        "readings) or reset (forget everything) the baseline of one series of an spc rule, in "
        "every running alerting process of this configuration's namespace.",
    )
    baseline.add_argument("action", choices=["freeze", "relearn", "reset"])
    baseline.add_argument("--config", required=True, help="alerting YAML file")
    baseline.add_argument("--rule", required=True, help="the spc rule's name")
    baseline.add_argument(
        "--series", required=True, help="plant/area/line/machine/signal of the series"
    )
    baseline.add_argument("--by", default=None, help="who asks (default: the login name)")
    baseline.set_defaults(func=_baseline)


def _baseline(args: argparse.Namespace) -> int:
    config = load_alerting_config(args.config)
    rule = next((r for r in config.rules if r.name == args.rule), None)
    if rule is None or rule.type != "spc":
        spc = ", ".join(r.name for r in config.rules if r.type == "spc") or "none"
        print(f"{args.config}: no spc rule {args.rule!r} (spc rules: {spc})", file=sys.stderr)
        return 2
    parts = args.series.split("/")
    if len(parts) != 5 or not all(parts) or parts[4] != rule.signal:
        print(
            f"--series must be plant/area/line/machine/{rule.signal} (the rule's signal), "
            f"got {args.series!r}",
            file=sys.stderr,
        )
        return 2
    command = BaselineCommand(
        action=args.action,
        rule=args.rule,
        series=args.series,
        issued_at=datetime.now(UTC),
        by=args.by or getpass.getuser(),
    )
    topic = Topics(config.namespace).alerting_commands
    new = config.kafka_topics

    async def deliver() -> None:
        if new.create:
            await ensure_topics(config.kafka, [topic], new.partitions, new.replication_factor)
        await send(config.kafka, topic, command)

    try:
        asyncio.run(deliver())
    except (KafkaError, TopicSetupError, OSError) as exc:
        print(f"cannot send the command to {topic}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.action} of {args.series} ({args.rule}) sent to {topic}")
    return 0
