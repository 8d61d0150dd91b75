"""An alarm row and the lifecycle's Alarm, both ways; what identifies an alarm's key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from alerting.lifecycle.states import Alarm, Shelving
from alerting.records.schema import aware
from plantmesh.contracts import AlertEvent


def open_key(event: AlertEvent) -> str:
    return f"{event.rule}|{event.asset}|{event.signal}"


def alarm_of(row: Row[Any]) -> Alarm:
    return Alarm(
        active=row.active,
        acknowledged=row.acknowledged,
        shelving=Shelving(row.shelving) if row.shelving else None,
        shelved_until=None if row.shelved_until is None else aware(row.shelved_until),
        suppressed_by=row.suppressed_by,
        out_of_service=row.out_of_service,
        resolved=row.resolved,
    )


def columns_of(alarm: Alarm) -> dict[str, Any]:
    return {
        "state": alarm.state.value,
        "active": alarm.active,
        "acknowledged": alarm.acknowledged,
        "resolved": alarm.resolved,
        "shelving": alarm.shelving.value if alarm.shelving else None,
        "shelved_until": alarm.shelved_until,
        "suppressed_by": alarm.suppressed_by,
        "out_of_service": alarm.out_of_service,
    }


def event_details(event: AlertEvent) -> dict[str, Any]:
    return {"alert_id": event.alert_id, "summary": event.evidence.summary}
