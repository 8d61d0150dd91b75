"""Network incidents: the same issue type on the same machine class in several plants, as one
story. The correlation stage publishes an IncidentUpdate on `incidents.events` (keyed by incident
id) each time an incident opens, gains a member, loses one to a clear, closes or reopens.

Every update carries the whole incident as it stands (members, plants, explanation), not a
delta: a reader that applies it twice, or misses one, still ends with the right picture, and
`version` (one more with every change of the incident) orders them."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from plantmesh.contracts.alerts import Severity
from plantmesh.contracts.common import AwareDatetime, Name, WireModel

INCIDENT_CONTRACT = "network-incident/1"


class IncidentChange(StrEnum):
    OPENED = "opened"
    JOINED = "joined"
    MEMBER_CLEARED = "member_cleared"
    CLOSED = "closed"
    REOPENED = "reopened"


class IncidentMember(WireModel):
    plant: Name
    area: Name
    line: Name
    machine: Name
    signal: Name
    alert_id: str
    """Its latest alert in the incident (the one a clear refers to)."""
    alert_ids: list[str]
    """Every alert of this machine in the incident."""
    raised_at: AwareDatetime
    cleared_at: AwareDatetime | None = None
    summary: str
    severity: Severity


class CorrelationTerms(WireModel):
    """The policy the incident was opened under."""

    min_plants: int
    min_machines: int
    window_s: float
    hold_s: float


class IncidentUpdate(WireModel):
    contract: Annotated[str, Field(pattern=r"^network-incident/1$")] = INCIDENT_CONTRACT
    incident_id: Annotated[str, Field(min_length=1, max_length=64)]
    version: Annotated[int, Field(ge=1)]
    change: IncidentChange
    at: AwareDatetime
    """When the change happened: the member's raise or clear (event time), or the close."""
    issue_type: Name
    machine_class: Name
    severity: Severity
    """The most severe member's."""
    opened_at: AwareDatetime
    closed_at: AwareDatetime | None = None
    plants: list[Name]
    """In the order the issue reached them."""
    members: list[IncidentMember]
    """In the order they raised."""
    member: IncidentMember | None = None
    """The member this change is about (none for a close)."""
    new_plant: bool = False
    """The member is the first of its plant: headquarters is told again."""
    explanation: dict[str, Any]
    """`text` (one line), first plant, spread, what members share and what quiet machines of
    the class have instead (alerting/incidents/explanation.py)."""
    terms: CorrelationTerms
