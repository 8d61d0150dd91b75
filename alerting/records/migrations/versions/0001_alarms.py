"""Alarms, their append-only trail, timers, deliveries, outbox, API tokens and maintenance windows.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)
SERIAL = sa.BigInteger().with_variant(sa.Integer, "sqlite")

POSTGRES_APPEND_ONLY = [
    """CREATE FUNCTION plantmesh_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
    END $$""",
    """CREATE TRIGGER alarm_trail_append_only BEFORE UPDATE OR DELETE ON alarm_trail
    FOR EACH ROW EXECUTE FUNCTION plantmesh_refuse_change()""",
    """CREATE TRIGGER alarm_trail_no_truncate BEFORE TRUNCATE ON alarm_trail
    FOR EACH STATEMENT EXECUTE FUNCTION plantmesh_refuse_change()""",
]
SQLITE_APPEND_ONLY = [
    """CREATE TRIGGER alarm_trail_no_update BEFORE UPDATE ON alarm_trail
    BEGIN SELECT RAISE(ABORT, 'alarm_trail is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER alarm_trail_no_delete BEFORE DELETE ON alarm_trail
    BEGIN SELECT RAISE(ABORT, 'alarm_trail is append-only: DELETE refused'); END""",
]


def upgrade() -> None:
    op.create_table(
        "alarms",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("open_key", sa.String(400), unique=True, nullable=True),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("rule_version", sa.String(64), nullable=False),
        sa.Column("issue_type", sa.String(128), nullable=False),
        sa.Column("machine_class", sa.String(128), nullable=True),
        sa.Column("plant", sa.String(128), nullable=False),
        sa.Column("area", sa.String(128), nullable=False),
        sa.Column("line", sa.String(128), nullable=False),
        sa.Column("machine", sa.String(128), nullable=False),
        sa.Column("signal", sa.String(128), nullable=False),
        sa.Column("gateway_id", sa.String(128), nullable=True),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("acknowledged", sa.Boolean, nullable=False),
        sa.Column("resolved", sa.Boolean, nullable=False),
        sa.Column("shelving", sa.String(16), nullable=True),
        sa.Column("shelved_until", WHEN, nullable=True),
        sa.Column("suppressed_by", sa.String(400), nullable=True),
        sa.Column("out_of_service", sa.Boolean, nullable=False),
        sa.Column("assignee", sa.String(128), nullable=True),
        sa.Column("raised_at", WHEN, nullable=False),
        sa.Column("opened_at", WHEN, nullable=False),
        sa.Column("acknowledged_at", WHEN, nullable=True),
        sa.Column("closed_at", WHEN, nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("escalation_policy", sa.String(128), nullable=True),
        sa.Column("escalation_level", sa.Integer, nullable=True),
        sa.Column("escalation_round", sa.Integer, nullable=True),
    )
    op.create_index("ix_alarms_plant_state", "alarms", ["plant", "state"])
    op.create_index("ix_alarms_opened_at", "alarms", ["opened_at"])
    op.create_index("ix_alarms_gateway", "alarms", ["plant", "gateway_id"])
    op.create_table(
        "alarm_trail",
        sa.Column("seq", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("alarm_id", sa.String(64), sa.ForeignKey("alarms.id"), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("event_at", WHEN, nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("from_state", sa.String(32), nullable=True),
        sa.Column("to_state", sa.String(32), nullable=True),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("source_event", sa.String(80), unique=True, nullable=True),
    )
    op.create_index("ix_alarm_trail_alarm", "alarm_trail", ["alarm_id", "seq"])
    op.create_table(
        "alarm_timers",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("alarm_id", sa.String(64), sa.ForeignKey("alarms.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("due_at", WHEN, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
    )
    op.create_index("ix_alarm_timers_due", "alarm_timers", ["due_at"])
    op.create_index("ix_alarm_timers_alarm_kind", "alarm_timers", ["alarm_id", "kind"], unique=True)
    op.create_table(
        "alarm_deliveries",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(400), unique=True, nullable=False),
        sa.Column("alarm_id", sa.String(64), sa.ForeignKey("alarms.id"), nullable=False),
        sa.Column("trail_seq", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("level", sa.Integer, nullable=True),
        sa.Column("contact", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("channel_index", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("due_at", WHEN, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("sent_at", WHEN, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_alarm_deliveries_due", "alarm_deliveries", ["status", "due_at"])
    op.create_index("ix_alarm_deliveries_alarm", "alarm_deliveries", ["alarm_id"])
    op.create_table(
        "alarm_outbox",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("sink", sa.String(16), nullable=False),
        sa.Column("trail_seq", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("due_at", WHEN, nullable=False),
    )
    op.create_index("ix_alarm_outbox_due", "alarm_outbox", ["due_at"])
    op.create_table(
        "api_tokens",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), unique=True, nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("plants", sa.JSON, nullable=False),
        sa.Column("token_hash", sa.String(64), unique=True, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("revoked_at", WHEN, nullable=True),
    )
    op.create_table(
        "maintenance_windows",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("plant", sa.String(128), nullable=False),
        sa.Column("machine", sa.String(128), nullable=False),
        sa.Column("starts_at", WHEN, nullable=False),
        sa.Column("ends_at", WHEN, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("ended_at", WHEN, nullable=True),
    )
    op.create_index("ix_maintenance_machine", "maintenance_windows", ["plant", "machine"])
    dialect = op.get_bind().dialect.name
    for statement in POSTGRES_APPEND_ONLY if dialect == "postgresql" else SQLITE_APPEND_ONLY:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS alarm_trail_no_truncate ON alarm_trail")
        op.execute("DROP TRIGGER IF EXISTS alarm_trail_append_only ON alarm_trail")
        op.execute("DROP FUNCTION IF EXISTS plantmesh_refuse_change()")
    op.drop_table("maintenance_windows")
    op.drop_table("api_tokens")
    op.drop_table("alarm_outbox")
    op.drop_table("alarm_deliveries")
    op.drop_table("alarm_timers")
    op.drop_table("alarm_trail")
    op.drop_table("alarms")
