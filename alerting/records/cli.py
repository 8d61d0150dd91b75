"""`plantmesh alerting db upgrade|current`: the alarm database's schema, for operators who
migrate before they roll out a new version (the service also upgrades on start)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from alerting.records.database import DatabaseUrlError, async_url, open_database, shown
from alerting.records.migrate import current, head, upgrade
from plantmesh.cli import Subparsers

URL_VAR = "PLANTMESH_DATABASE_URL"


def register_db(commands: Subparsers) -> None:
    db = commands.add_parser("db", help="the alarm database: migrate it, show its revision")
    actions = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    for name, func, text in (
        ("upgrade", _upgrade, "apply every migration the database lacks"),
        ("current", _current, "print the database's revision and the code's"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument(
            "--url",
            default=os.environ.get(URL_VAR),
            help=f"postgresql://... or sqlite:///path (default: ${URL_VAR})",
        )
        action.set_defaults(func=func)


def _url(args: argparse.Namespace) -> str | None:
    if not args.url:
        print(f"no database: pass --url or set {URL_VAR}", file=sys.stderr)
        return None
    try:
        async_url(args.url)
    except DatabaseUrlError as exc:
        print(f"--url: {exc}", file=sys.stderr)
        return None
    return str(args.url)


def _upgrade(args: argparse.Namespace) -> int:
    url = _url(args)
    if url is None:
        return 2

    async def run() -> str | None:
        engine = open_database(url)
        try:
            await upgrade(engine)
            return await current(engine)
        finally:
            await engine.dispose()

    revision = asyncio.run(run())
    print(f"{shown(async_url(url))}: at revision {revision} (head {head()})")
    return 0


def _current(args: argparse.Namespace) -> int:
    url = _url(args)
    if url is None:
        return 2

    async def run() -> str | None:
        engine = open_database(url)
        try:
            return await current(engine)
        finally:
            await engine.dispose()

    revision = asyncio.run(run())
    print(f"database {revision or 'not migrated'}, code {head()}")
    return 0 if revision == head() else 1
