"""What the API takes and gives: pydantic models, so /openapi.json describes every field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from alerting.records.schema import aware

Text = Annotated[str, Field(min_length=1, max_length=2000)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AcknowledgeIn(_In):
    comment: Text | None = None


class ShelveIn(_In):
    reason: Text
    """ISA-18.2: every shelving says why."""
    duration_s: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] | None = None
    """Timed shelving (bounded by the service's maximum); leave out for one-shot."""
    one_shot: bool = False
    """Until the condition clears."""


class ReasonIn(_In):
    reason: Text


class OptionalReasonIn(_In):
    reason: Text | None = None


class CommentIn(_In):
    text: Text


class AssignIn(_In):
    assignee: Annotated[str, Field(min_length=1, max_length=128)] | None
    """Who works on it (null: nobody)."""


class TrailEntryOut(BaseModel):
    seq: int
    at: datetime
    event_at: datetime | None
    action: str
    actor: str
    from_state: str | None
    to_state: str | None
    text: str | None
    details: dict[str, Any]


class DeliveryOut(BaseModel):
    kind: str
    level: int | None
    contact: str
    channel: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


class AlarmOut(BaseModel):
    id: str
    state: str
    active: bool
    acknowledged: bool
    resolved: bool
    shelving: str | None
    shelved_until: datetime | None
    suppressed_by: str | None
    out_of_service: bool
    assignee: str | None
    rule: str
    rule_version: str
    issue_type: str
    machine_class: str | None
    plant: str
    area: str
    line: str
    machine: str
    signal: str
    priority: str
    raised_at: datetime
    opened_at: datetime
    acknowledged_at: datetime | None
    closed_at: datetime | None
    escalation_policy: str | None
    escalation_level: int | None
    """1-based: the level told last."""
    time_to_acknowledge_s: float | None
    time_to_resolve_s: float | None


class AlarmDetail(AlarmOut):
    evidence: dict[str, Any]
    timeline: list[TrailEntryOut]
    deliveries: list[DeliveryOut]
    incidents: list[str] = []
    """The network incidents it is a member of (or, for an incident's alarm, stands for)."""


class WhoAmI(BaseModel):
    name: str
    role: str
    plants: list[str]


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (aware(end) - aware(start)).total_seconds()


def _when(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value)


def alarm_out(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "state": row.state,
        "active": row.active,
        "acknowledged": row.acknowledged,
        "resolved": row.resolved,
        "shelving": row.shelving,
        "shelved_until": _when(row.shelved_until),
        "suppressed_by": row.suppressed_by,
        "out_of_service": row.out_of_service,
        "assignee": row.assignee,
        "rule": row.rule,
        "rule_version": row.rule_version,
        "issue_type": row.issue_type,
        "machine_class": row.machine_class,
        "plant": row.plant,
        "area": row.area,
        "line": row.line,
        "machine": row.machine,
        "signal": row.signal,
        "priority": row.priority,
        "raised_at": aware(row.raised_at),
        "opened_at": aware(row.opened_at),
        "acknowledged_at": _when(row.acknowledged_at),
        "closed_at": _when(row.closed_at),
        "escalation_policy": row.escalation_policy,
        "escalation_level": None if row.escalation_level is None else row.escalation_level + 1,
        "time_to_acknowledge_s": _seconds(row.opened_at, row.acknowledged_at),
        "time_to_resolve_s": _seconds(row.opened_at, row.closed_at),
    }


def detail_out(row: Any, trail: Any, deliveries: Any) -> AlarmDetail:
    timeline = [
        TrailEntryOut(
            seq=t.seq,
            at=aware(t.at),
            event_at=_when(t.event_at),
            action=t.action,
            actor=t.actor,
            from_state=t.from_state,
            to_state=t.to_state,
            text=t.text,
            details=t.details,
        )
        for t in trail
    ]
    # Computed from the trail: the first acknowledgement (or resolution) and the return to normal.
    answered = next((t.at for t in timeline if t.action in ("acknowledge", "resolve")), None)
    closed = next((t.at for t in timeline if t.to_state == "normal"), None)
    fields = alarm_out(row)
    fields["time_to_acknowledge_s"] = _seconds(row.opened_at, answered)
    fields["time_to_resolve_s"] = _seconds(row.opened_at, closed)
    sent = [
        DeliveryOut(
            kind=d.kind,
            level=d.level,
            contact=d.contact,
            channel=d.channel,
            status=d.status,
            attempts=d.attempts,
            created_at=aware(d.created_at),
            sent_at=_when(d.sent_at),
            last_error=d.last_error,
        )
        for d in deliveries
    ]
    return AlarmDetail(**fields, evidence=row.evidence, timeline=timeline, deliveries=sent)
