"""The tables, as SQLAlchemy Core metadata. Migrations (migrations/versions) create them; this
module is what the code reads and writes through, and a test holds the two together.

- `alarms`: one row per occurrence, its current state (kept here so lists need no replay).
- `alarm_trail`: append-only, every transition and every action with its actor. The database
  itself refuses UPDATE and DELETE on it (a trigger in PostgreSQL and in SQLite).
- `alarm_timers`: due times (re-alarm, end of shelving, escalation levels), claimed by whoever
  runs them, never sleeping tasks.
- `alarm_deliveries`: one row per notification to send, unique per (alarm, trail entry, level,
  contact, channel), so a restart or a second process never sends one twice; attempts, the
  next attempt's time and the last error are kept on it.
- `maintenance_windows`: planned maintenance of a machine: its alarms are suppressed by design
  until the window ends (or is ended early).
- `api_tokens`: who may use the API: a name, a role, the plants in scope, and the SHA-256 of
  the token (never the token itself).
- `alarm_outbox`: each trail entry still to publish (Kafka, InfluxDB, andon boards), written in
  the transaction that made it, deleted once published: nothing is lost between the commit
  and the publication.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

ID = String(64)
NAME = String(128)
WHEN = DateTime(timezone=True)

alarms = Table(
    "alarms",
    metadata,
    Column("id", ID, primary_key=True),
    # rule|asset|signal while the occurrence is open, NULL once normal: at most one open
    # occurrence per key, held by the database (NULLs never collide in a unique index).
    Column("open_key", String(400), unique=True, nullable=True),
    Column("rule", NAME, nullable=False),
    Column("rule_version", String(64), nullable=False),
    Column("issue_type", NAME, nullable=False),
    Column("machine_class", NAME, nullable=True),
    Column("plant", NAME, nullable=False),
    Column("area", NAME, nullable=False),
    Column("line", NAME, nullable=False),
    Column("machine", NAME, nullable=False),
    Column("signal", NAME, nullable=False),
    Column("gateway_id", NAME, nullable=True),
    Column("priority", String(16), nullable=False),
    Column("state", String(32), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("acknowledged", Boolean, nullable=False),
    Column("resolved", Boolean, nullable=False),
    Column("shelving", String(16), nullable=True),
    Column("shelved_until", WHEN, nullable=True),
    Column("suppressed_by", String(400), nullable=True),
    Column("out_of_service", Boolean, nullable=False),
    Column("assignee", NAME, nullable=True),
    Column("raised_at", WHEN, nullable=False),  # event time of the first RAISED (source time)
    Column("opened_at", WHEN, nullable=False),  # recorded: where time to acknowledge starts
    Column("acknowledged_at", WHEN, nullable=True),
    Column("closed_at", WHEN, nullable=True),
    Column("updated_at", WHEN, nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("escalation_policy", NAME, nullable=True),
    Column("escalation_level", Integer, nullable=True),
    Column("escalation_round", Integer, nullable=True),
    Index("ix_alarms_plant_state", "plant", "state"),
    Index("ix_alarms_opened_at", "opened_at"),
    Index("ix_alarms_gateway", "plant", "gateway_id"),
)

alarm_trail = Table(
    "alarm_trail",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("alarm_id", ID, ForeignKey("alarms.id"), nullable=False),
    Column("at", WHEN, nullable=False),  # when it was recorded (wall time)
    Column("event_at", WHEN, nullable=True),  # RAISED/CLEARED: the event time the rule decided
    Column("action", String(32), nullable=False),
    Column("actor", NAME, nullable=False),
    Column("from_state", String(32), nullable=True),
    Column("to_state", String(32), nullable=True),
    Column("text", Text, nullable=True),
    Column("details", JSON, nullable=False),
    # The detection event it records ("<alert id>:raised"): a replayed event is refused here.
    Column("source_event", String(80), unique=True, nullable=True),
    Index("ix_alarm_trail_alarm", "alarm_id", "seq"),
)

alarm_timers = Table(
    "alarm_timers",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("alarm_id", ID, ForeignKey("alarms.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("due_at", WHEN, nullable=False),
    Column("details", JSON, nullable=False),
    Index("ix_alarm_timers_due", "due_at"),
    Index("ix_alarm_timers_alarm_kind", "alarm_id", "kind", unique=True),
)


def aware(value: datetime) -> datetime:
    """SQLite gives timestamps back without their zone; everything stored is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


alarm_deliveries = Table(
    "alarm_deliveries",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("dedupe_key", String(400), unique=True, nullable=False),
    Column("alarm_id", ID, ForeignKey("alarms.id"), nullable=False),
    Column("trail_seq", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("level", Integer, nullable=True),
    Column("contact", NAME, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("channel_index", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("due_at", WHEN, nullable=False),
    Column("created_at", WHEN, nullable=False),
    Column("sent_at", WHEN, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_alarm_deliveries_due", "status", "due_at"),
    Index("ix_alarm_deliveries_alarm", "alarm_id"),
)

alarm_outbox = Table(
    "alarm_outbox",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("sink", String(16), nullable=False),
    Column("trail_seq", BigInteger, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("due_at", WHEN, nullable=False),
    Index("ix_alarm_outbox_due", "due_at"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("name", NAME, unique=True, nullable=False),
    Column("role", String(32), nullable=False),
    Column("plants", JSON, nullable=False),
    Column("token_hash", String(64), unique=True, nullable=False),
    Column("created_at", WHEN, nullable=False),
    Column("revoked_at", WHEN, nullable=True),
)

maintenance_windows = Table(
    "maintenance_windows",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("plant", NAME, nullable=False),
    Column("machine", NAME, nullable=False),
    Column("starts_at", WHEN, nullable=False),
    Column("ends_at", WHEN, nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", NAME, nullable=False),
    Column("ended_at", WHEN, nullable=True),
    Index("ix_maintenance_machine", "plant", "machine"),
)

# A network incident (alerting/incidents): the correlation stage's latest picture of it, the
# alarm that carries its lifecycle, escalation and trail, and its members' alert ids.
incidents = Table(
    "incidents",
    metadata,
    Column("id", ID, primary_key=True),
    Column("alarm_id", ID, ForeignKey("alarms.id"), nullable=True),
    Column("version", Integer, nullable=False),
    Column("issue_type", NAME, nullable=False),
    Column("machine_class", NAME, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("open", Boolean, nullable=False),
    Column("opened_at", WHEN, nullable=False),
    Column("closed_at", WHEN, nullable=True),
    Column("plants", JSON, nullable=False),
    Column("members", JSON, nullable=False),
    Column("explanation", JSON, nullable=False),
    Column("terms", JSON, nullable=False),
    Column("updated_at", WHEN, nullable=False),
    Index("ix_incidents_open", "open", "opened_at"),
)

incident_alerts = Table(
    "incident_alerts",
    metadata,
    Column("incident_id", ID, ForeignKey("incidents.id"), primary_key=True),
    Column("alert_id", ID, primary_key=True),
    # The members' alert ids, not their alarms: a member's alarm may be recorded after the update
    # that names it (another topic), so alarm and incident are matched when read.
    Index("ix_incident_alerts_alert", "alert_id"),
)
