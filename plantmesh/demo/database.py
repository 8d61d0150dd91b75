"""The demo's system of record: a database of its own on the stack's PostgreSQL, made fresh at
every run (the alarms of an earlier run would otherwise still be open, and their escalations
still due). SQLite in the run's folder when the server refuses to make one."""

from __future__ import annotations

import asyncio
import urllib.parse
from pathlib import Path

DATABASE = "plantmesh_demo"


async def _recreate(server: str, name: str) -> None:
    import asyncpg  # the alerting extra: only the demo needs it here

    connection = await asyncpg.connect(server, timeout=10)
    try:
        # The demo's alarm service of an earlier run is stopped; FORCE also ends any client
        # still looking at the old data (psql, a dashboard).
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def demo_database(server: str | None, run_dir: Path) -> tuple[str, str]:
    """(the URL the alarm service uses, what to tell the user about it)."""
    if server:
        parts = urllib.parse.urlsplit(server)
        try:
            asyncio.run(_recreate(server, DATABASE))
        except Exception as exc:  # any refusal: fall back, and say why
            reason = f"PostgreSQL refused a database of the demo's own ({exc!r})"
        else:
            url = urllib.parse.urlunsplit(parts._replace(path=f"/{DATABASE}"))
            shown = f"{parts.hostname}:{parts.port}/{DATABASE}"
            return url, f"PostgreSQL database {DATABASE} on {shown}"
    else:
        reason = "no PLANTMESH_DATABASE_URL"
    path = run_dir / "alarms.db"
    return f"sqlite:///{path}", f"SQLite {path} ({reason})"
