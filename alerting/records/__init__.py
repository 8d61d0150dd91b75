"""The system of record for what people did with alarms: PostgreSQL (SQLite for one site)."""
