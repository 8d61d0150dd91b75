"""`plantmesh alerting alarms --config F` (the alarm service) and `plantmesh alerting token
create|list|revoke` (who may use its API)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.alarm_service.config import load_alarm_config
from alerting.alarm_service.service import AlarmService, SchemaBehindError
from alerting.api.roles import Role
from alerting.api.tokens import TokenError, create_token, list_tokens, revoke_token
from alerting.records.database import open_database
from alerting.records.migrate import upgrade
from plantmesh.cli import Subparsers
from plantmesh.kafka.admin import TopicSetupError
from plantmesh.lifecycle import run_service

T = TypeVar("T")


def register_alarms(commands: Subparsers) -> None:
    alarms = commands.add_parser(
        "alarms",
        help="run the alarm service: lifecycle, escalation, notifications, audit trail, API",
    )
    alarms.add_argument("--config", required=True, help="alarm service YAML file")
    alarms.set_defaults(func=_run)

    token = commands.add_parser("token", help="API tokens: create, list, revoke")
    actions = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="make a token (printed once, stored hashed)")
    create.add_argument("--name", required=True, help="who uses it (shown as the actor)")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument(
        "--plant",
        action="append",
        default=[],
        dest="plants",
        help="a plant in scope (repeat it; '*' for every plant)",
    )
    create.add_argument("--config", required=True, help="alarm service YAML file (its database)")
    create.set_defaults(func=_create)
    listing = actions.add_parser("list", help="names, roles, scopes; never the tokens")
    listing.add_argument("--config", required=True)
    listing.set_defaults(func=_list)
    revoke = actions.add_parser("revoke", help="the token stops working at once")
    revoke.add_argument("name")
    revoke.add_argument("--config", required=True)
    revoke.set_defaults(func=_revoke)


def _run(args: argparse.Namespace) -> int:
    config = load_alarm_config(args.config)
    fatal = (TopicSetupError, SchemaBehindError)
    return run_service(lambda: AlarmService(config), "alarms", fatal=fatal)


def _with_database(args: argparse.Namespace, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    config = load_alarm_config(args.config)

    async def run() -> T:
        engine = open_database(config.database.url.get_secret_value())
        try:
            await upgrade(engine)
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _create(args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> str:
        return await create_token(
            engine, args.name, Role(args.role), args.plants, datetime.now(UTC)
        )

    try:
        token = _with_database(args, work)
    except TokenError as exc:
        print(f"token create: {exc}", file=sys.stderr)
        return 2
    print(token)
    print(
        f"# {args.name}: {args.role} of {', '.join(args.plants)}. Shown once; keep it secret "
        "(PLANTMESH_API_TOKEN).",
        file=sys.stderr,
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    for name, role, plants, active in _with_database(args, list_tokens):
        state = "active" if active else "revoked"
        print(f"{name:<24} {role:<14} {','.join(plants):<30} {state}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> bool:
        return await revoke_token(engine, args.name, datetime.now(UTC))

    if not _with_database(args, work):
        print(f"no active token named {args.name!r}", file=sys.stderr)
        return 1
    print(f"revoked {args.name}")
    return 0
