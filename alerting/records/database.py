"""Opening the database from a URL, the same code for PostgreSQL and SQLite.

`PLANTMESH_DATABASE_URL` (or the config's `database.url`) takes the usual forms:
postgresql://user:password@host:port/db (asyncpg drives it) or sqlite:///path/to/file.db
(aiosqlite; one site, one process writing)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}


class DatabaseUrlError(ValueError):
    pass


def async_url(raw: str) -> URL:
    """The URL with its async driver; an unknown database is refused by name."""
    try:
        url = make_url(raw)
    except Exception as exc:  # SQLAlchemy's ArgumentError names no field: say which
        raise DatabaseUrlError(f"not a database URL: {exc}") from None
    backend = url.get_backend_name()
    if backend not in ASYNC_DRIVERS:
        raise DatabaseUrlError(
            f"database {backend!r} is not supported: use postgresql://... or sqlite:///path"
        )
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        raise DatabaseUrlError("SQLite needs a file (sqlite:///path/alarms.db): alarms must last")
    return url.set(drivername=ASYNC_DRIVERS[backend])


def shown(url: URL) -> str:
    """For logs: never the password."""
    return url.render_as_string(hide_password=True)


def open_database(raw: str, pool_size: int = 5) -> AsyncEngine:
    url = async_url(raw)
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(url, pool_size=pool_size, pool_pre_ping=True)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL so readers (the API) never block the writer; foreign keys on; wait for a lock
    instead of failing at once when two tasks write. The driver's own transaction handling is
    turned off: `_sqlite_begin` opens every transaction itself."""
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    """Every transaction takes the write lock when it starts (BEGIN IMMEDIATE): a claim that
    reads due rows and then leases them is never interleaved with another's, which SQLite's
    default deferred transactions allow (PostgreSQL uses row locks for this)."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")
