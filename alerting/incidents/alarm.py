"""A network incident as an alarm: the alarm service keeps each incident as an alarm of the
`network` plant, so it has the same lifecycle (acknowledge, shelve, resolve), trail, escalation
(policies with `scope: network`, e.g. headquarters reliability, then the operations director),
notifications and API as any machine's alarm, without a second implementation of any of them.

Its asset is network/<machine class>/<issue type>/<incident id>: one open alarm per incident."""

from __future__ import annotations

import hashlib

from plantmesh.contracts import (
    AlertEvent,
    AlertEventKind,
    AssetPath,
    Evidence,
    IncidentUpdate,
)

INCIDENT_RULE = "network-incident"
NETWORK_PLANT = "network"
INCIDENT_SIGNAL = "incident"


def incident_asset(update: IncidentUpdate) -> AssetPath:
    return AssetPath(
        plant=NETWORK_PLANT,
        area=update.machine_class,
        line=update.issue_type,
        machine=update.incident_id,
    )


def incident_evidence(update: IncidentUpdate) -> Evidence:
    terms = update.terms
    return Evidence(
        summary=str(update.explanation.get("text", "")),
        condition=(
            f"{update.issue_type} on >= {terms.min_machines} {update.machine_class} machines in "
            f">= {terms.min_plants} plants within {terms.window_s:.0f} s"
        ),
        parameters={
            "min_plants": terms.min_plants,
            "min_machines": terms.min_machines,
            "window_s": terms.window_s,
            "hold_s": terms.hold_s,
            "plants": len(update.plants),
            "members": len(update.members),
        },
    )


def incident_event(update: IncidentUpdate, kind: AlertEventKind) -> AlertEvent:
    """The RAISED (opened, reopened) or CLEARED (closed) the incident's alarm records; its id is
    the incident's and version's, so a replayed update is recognised as one."""
    terms = update.terms.model_dump_json().encode()
    return AlertEvent(
        alert_id=f"{update.incident_id}.{update.version}",
        kind=kind,
        issue_type=update.issue_type,
        rule=INCIDENT_RULE,
        rule_version=hashlib.sha256(terms).hexdigest()[:12],
        machine_class=update.machine_class,
        asset=incident_asset(update),
        signal=INCIDENT_SIGNAL,
        severity=update.severity,
        at=update.at,
        evidence=incident_evidence(update),
    )
