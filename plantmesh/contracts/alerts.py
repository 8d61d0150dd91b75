"""Alerts and the events of their life. An alert always carries the evidence that raised it,
so "why did this fire?" has an answer without digging through dashboards."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from plantmesh.contracts.common import (
    SCHEMA_VERSION,
    AssetPath,
    AwareDatetime,
    Name,
    SchemaVersion,
    WireModel,
)


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class AlertEventKind(StrEnum):
    RAISED = "raised"
    CLEARED = "cleared"


class EvidencePoint(WireModel):
    ts: AwareDatetime
    value: float


class Evidence(WireModel):
    """What the rule saw and how it decided: enough to replay the decision by hand."""

    summary: str
    condition: str
    points: list[EvidencePoint] = Field(default_factory=list)
    parameters: dict[str, int | float | str] = Field(default_factory=dict)


class AlertEvent(WireModel):
    schema_version: SchemaVersion = SCHEMA_VERSION
    alert_id: str
    kind: AlertEventKind
    issue_type: Name
    """The catalogue's issue type (deploy/alerting/issue-types.yaml): the shared name of the
    problem, its owner role and first response."""
    rule: Name
    rule_version: Annotated[str, Field(min_length=1, max_length=64)]
    """A hash of the rule's configuration: which exact rule decided (replays use the same)."""
    machine_class: Name | None = None
    """The machine's class in the asset registry, when the reading carried it."""
    asset: AssetPath
    signal: Name
    severity: Severity
    at: AwareDatetime
    """Event time: when the condition was met (raised) or left (cleared), in source time."""
    evidence: Evidence
    gateway_id: Name | None = None
    """The gateway the machine's data came through (for a gateway's own alerts: itself), so a
    gateway's comms loss can suppress its machines' alarms."""
