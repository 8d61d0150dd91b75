"""Alembic's entry point. plantmesh runs migrations itself (alerting/records/migrate.py) on a
connection it opened, so this only configures the context on that connection."""

from __future__ import annotations

from alembic import context

from alerting.records.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
