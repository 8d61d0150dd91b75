"""What to say when an answer is empty: what was asked where, and what does exist there.

An empty answer most often means the question went somewhere else than intended (another
database, a misspelt plant, a window too short), so the hint names the database, measurement,
filters and window used, then checks each in turn with SHOW statements (best effort: a user
who may not run one just gets fewer hints).
"""

from __future__ import annotations

from collections.abc import Callable

from plantmesh.influxql import InfluxQueryError, Series
from plantmesh.query.statements import Question, literal

RunShow = Callable[[str, str], list[Series]]
"""Run an InfluxQL statement in a database: (database, statement) -> series."""

LISTED = 20  # names shown at most, so a hint stays one line


def _names(series: list[Series], column: str) -> list[str]:
    return [str(row[s.columns.index(column)]) for s in series for row in s.values]


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED]) or "none"
    return shown + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")


def _try(run: RunShow, database: str, statement: str) -> list[Series] | None:
    try:
        return run(database, statement)
    except InfluxQueryError:
        return None


def missing_database(run: RunShow, database: str) -> str | None:
    """A hint when `database` does not exist (or this user may not see it), else None."""
    found = _try(run, database, "SHOW DATABASES")
    if found is None:
        return None
    names = [n for n in _names(found, "name") if n != "_internal"]
    if database in names:
        return None
    return (
        f"database {database!r} does not exist or you may not read it; "
        f"databases you may read: {_listing(names)} (choose one with --db)"
    )


def what_was_asked(q: Question | None, database: str, bucket: str | None) -> str:
    where = f"Flux bucket {bucket!r}" if bucket else f"database {database!r}"
    if q is None:
        return f"no rows from {where}"
    filters = " AND ".join(f"{tag} = {literal(v)}" for tag, v in q.tag_filters().items())
    window = f"in the last {q.since}" if q.since else "over all time"
    return (
        f"no data in {where}, measurement {q.measurement!r}"
        + (f", where {filters}" if filters else "")
        + f", {window}"
    )


def no_data_hints(
    run: RunShow, q: Question | None, database: str, bucket: str | None = None
) -> list[str]:
    """Lines to print (on stderr) after an empty answer, the first saying what was asked."""
    hints = [what_was_asked(q, database, bucket)]
    missing = missing_database(run, database)
    if missing or q is None:
        return hints + ([missing] if missing else [])
    found = _try(run, database, "SHOW MEASUREMENTS")
    if found is not None and q.measurement not in (measurements := _names(found, "name")):
        hints.append(
            f"database {database!r} has no measurement {q.measurement!r} "
            f"(it has: {_listing(measurements)})"
        )
        return hints
    narrowed: list[str] = []
    for tag, value in q.tag_filters().items():
        where = f" WHERE {' AND '.join(narrowed)}" if narrowed else ""
        statement = f"SHOW TAG VALUES FROM {q.measurement} WITH KEY = {tag}{where}"
        values = _try(run, database, statement)
        if values is None:
            return hints
        names = _names(values, "value")
        if value not in names:
            within = f" with {' AND '.join(narrowed)}" if narrowed else ""
            hints.append(f"no {tag} {value!r}{within}; there are: {_listing(names)}")
            return hints
        narrowed.append(f"{tag} = {literal(value)}")
    if q.since:
        hints.append(f"nothing newer than {q.since} ago: try a longer --since (e.g. --since 7d)")
    return hints
