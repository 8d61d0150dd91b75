"""A correlator change as the IncidentUpdate the stage publishes on incidents.events."""

from __future__ import annotations

from functools import lru_cache

from alerting.incidents.correlator import Change, Member
from alerting.incidents.explanation import explain
from alerting.incidents.policy import Correlation
from plantmesh.contracts import (
    CorrelationTerms,
    IncidentChange,
    IncidentMember,
    IncidentUpdate,
)
from plantmesh.fleet import Fleet


@lru_cache(maxsize=65536)
def member_out(member: Member) -> IncidentMember:
    # Every update carries every member, and most members do not change between updates:
    # each (immutable) member is converted once. Built from the correlator's checked values,
    # without a second validation.
    return IncidentMember.model_construct(
        plant=member.plant,
        area=member.area,
        line=member.line,
        machine=member.machine,
        signal=member.signal,
        alert_id=member.alert_id,
        alert_ids=list(member.alert_ids),
        raised_at=member.raised_at,
        cleared_at=member.cleared_at,
        summary=member.summary,
        severity=member.severity,
    )


def to_update(change: Change, fleet: Fleet, policy: Correlation) -> IncidentUpdate:
    incident = change.incident
    members = incident.ordered()
    return IncidentUpdate(
        incident_id=incident.id,
        version=incident.version,
        change=IncidentChange(change.kind.value),
        at=change.at,
        issue_type=incident.issue_type,
        machine_class=incident.machine_class,
        severity=incident.severity,
        opened_at=incident.opened_at,
        closed_at=incident.closed_at,
        plants=list(dict.fromkeys(m.plant for m in members)),
        members=[member_out(m) for m in members],
        member=None if change.member is None else member_out(change.member),
        new_plant=change.new_plant,
        explanation=explain(incident, fleet, members).as_json(),
        terms=CorrelationTerms(
            min_plants=policy.min_plants,
            min_machines=policy.min_machines,
            window_s=policy.window_s,
            hold_s=policy.hold_s,
        ),
    )
