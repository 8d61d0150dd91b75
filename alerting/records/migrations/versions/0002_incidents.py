"""Network incidents and their members' alert ids.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("alarm_id", sa.String(64), sa.ForeignKey("alarms.id"), nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("issue_type", sa.String(128), nullable=False),
        sa.Column("machine_class", sa.String(128), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("open", sa.Boolean, nullable=False),
        sa.Column("opened_at", WHEN, nullable=False),
        sa.Column("closed_at", WHEN, nullable=True),
        sa.Column("plants", sa.JSON, nullable=False),
        sa.Column("members", sa.JSON, nullable=False),
        sa.Column("explanation", sa.JSON, nullable=False),
        sa.Column("terms", sa.JSON, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    op.create_index("ix_incidents_open", "incidents", ["open", "opened_at"])
    op.create_table(
        "incident_alerts",
        sa.Column("incident_id", sa.String(64), sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("alert_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_incident_alerts_alert", "incident_alerts", ["alert_id"])


def downgrade() -> None:
    op.drop_table("incident_alerts")
    op.drop_table("incidents")
