"""The correlator: alert events in, network-incident changes out, no I/O.

State is kept per (machine class, issue type), the key the stage's input is partitioned by, so
each key's state lives in one place. A key's recent raises (event time, within the policy's
window) open an incident once they cover enough plants and machines; machines raising the issue
while it is open join it; once every member is clear for the hold time it closes; a raise within
the window after closing reopens it. Replayed events change nothing (raises and clears are
recognised by alert id), so a restart that replays from its last checkpoint is harmless.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from alerting.incidents.policy import Correlation, CorrelationConfig
from plantmesh.contracts import AlertEvent, AlertEventKind, Severity

SEVERITY_ORDER = [Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]
MAX_SUMMARY_CHARS = 1000
"""A member's summary is cut to this: every update carries every member's, so one alert with a
huge summary would make all of its incident's updates too large for Kafka (and checkpoints)."""


@dataclass(frozen=True)
class Member:
    """One machine showing the issue; its first raise in the incident and its latest clear."""

    plant: str
    area: str
    line: str
    machine: str
    signal: str
    alert_id: str
    raised_at: datetime
    summary: str
    severity: Severity
    cleared_at: datetime | None = None
    alert_ids: tuple[str, ...] = ()
    """Every alert of this machine in the incident (a machine can raise, clear, raise again)."""

    @property
    def where(self) -> str:
        return f"{self.plant}/{self.area}/{self.line}/{self.machine}"

    @property
    def active(self) -> bool:
        return self.cleared_at is None


class ChangeKind(StrEnum):
    OPENED = "opened"
    JOINED = "joined"
    """A machine joined (or raised the issue again while the incident is open)."""
    MEMBER_CLEARED = "member_cleared"
    CLOSED = "closed"
    REOPENED = "reopened"


@dataclass
class Incident:
    id: str
    machine_class: str
    issue_type: str
    opened_at: datetime
    members: dict[str, Member] = field(default_factory=dict)
    """Machine (plant/area/line/machine) -> member, in the order they joined."""
    closed_at: datetime | None = None
    reopened: int = 0
    version: int = 0
    """One more with every change: orders the updates a reader gets."""

    @property
    def plants(self) -> list[str]:
        """Plants in the order the issue reached them."""
        return list(dict.fromkeys(m.plant for m in self.ordered()))

    @property
    def active(self) -> bool:
        return any(m.active for m in self.members.values())

    @property
    def severity(self) -> Severity:
        return max((m.severity for m in self.members.values()), key=SEVERITY_ORDER.index)

    def ordered(self) -> list[Member]:
        return sorted(self.members.values(), key=lambda m: (m.raised_at, m.where))

    def quiet_since(self) -> datetime | None:
        """When the last member cleared, if every member is clear."""
        if self.active or not self.members:
            return None
        return max(m.cleared_at for m in self.members.values() if m.cleared_at is not None)

    def snapshot(self) -> Incident:
        return replace(self, members=dict(self.members))

    def changed(self) -> Incident:
        """Count a change; the snapshot that goes with it."""
        self.version += 1
        return self.snapshot()


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    incident: Incident
    """The incident as it stands after the change (a snapshot)."""
    at: datetime
    member: Member | None = None
    new_plant: bool = False
    """A member from a plant the incident did not have yet."""


@dataclass
class _Group:
    recent: dict[str, Member] = field(default_factory=dict)
    """Machine -> its latest raise within the window, whether or not cleared since."""
    incident: Incident | None = None
    latest: datetime | None = None
    """The newest event time seen: windows are measured on it, so late data (a gateway's
    backlog, a replay of history) correlates as it happened."""
    arrived: datetime | None = None
    """When its newest event arrived (the caller's clock): how long it has been silent."""


def incident_id(machine_class: str, issue_type: str, first_alert: str) -> str:
    digest = hashlib.sha256(f"{machine_class}/{issue_type}/{first_alert}".encode())
    return digest.hexdigest()[:24]


def _member(event: AlertEvent) -> Member:
    a = event.asset
    return Member(
        plant=a.plant,
        area=a.area,
        line=a.line,
        machine=a.machine,
        signal=event.signal,
        alert_id=event.alert_id,
        raised_at=event.at,
        summary=_short(event.evidence.summary),
        severity=event.severity,
        alert_ids=(event.alert_id,),
    )


def _short(text: str) -> str:
    return text if len(text) <= MAX_SUMMARY_CHARS else text[: MAX_SUMMARY_CHARS - 3] + "..."


class Correlator:
    def __init__(self, config: CorrelationConfig) -> None:
        self.config = config
        self.groups: dict[tuple[str, str], _Group] = {}

    def on_event(self, event: AlertEvent, arrived: datetime | None = None) -> list[Change]:
        """`arrived`: when it arrived, on the clock advance() is given (default: its event
        time, right for live data)."""
        if event.machine_class is None:
            return []  # without a class there is nothing to compare across plants
        policy = self.config.for_issue(event.issue_type)
        if policy is None:
            return []
        key = (event.machine_class, event.issue_type)
        group = self.groups.setdefault(key, _Group())
        group.latest = event.at if group.latest is None else max(group.latest, event.at)
        group.arrived = event.at if arrived is None else arrived
        if event.kind is AlertEventKind.RAISED:
            return self._raised(key, group, policy, _member(event))
        return self._cleared(group, event)

    def _raised(
        self, key: tuple[str, str], group: _Group, policy: Correlation, member: Member
    ) -> list[Change]:
        now = member.raised_at
        incident = group.incident
        if _known(group, member):
            return []  # a replay
        if incident is not None and incident.closed_at is not None:
            if now - incident.closed_at <= policy.window:
                incident.closed_at = None
                incident.reopened += 1
                return [self._join(incident, member, ChangeKind.REOPENED)]
            group.incident = incident = None
        if incident is not None:
            return [self._join(incident, member, ChangeKind.JOINED)]
        group.recent[member.where] = member
        _prune(group, now - policy.window)
        plants = {m.plant for m in group.recent.values()}
        if len(plants) < policy.min_plants or len(group.recent) < policy.min_machines:
            return []
        first = min(group.recent.values(), key=lambda m: (m.raised_at, m.where))
        incident = Incident(incident_id(*key, first.alert_id), *key, opened_at=now)
        for joined in sorted(group.recent.values(), key=lambda m: (m.raised_at, m.where)):
            incident.members[joined.where] = joined
        group.incident = incident
        group.recent.clear()
        return [Change(ChangeKind.OPENED, incident.changed(), now, member, new_plant=True)]

    def _join(self, incident: Incident, member: Member, kind: ChangeKind) -> Change:
        new_plant = member.plant not in {m.plant for m in incident.members.values()}
        known = incident.members.get(member.where)
        if known is not None:  # raised again: keeps its place, active again
            member = replace(
                known,
                cleared_at=None,
                alert_id=member.alert_id,
                summary=member.summary,
                alert_ids=(*known.alert_ids, member.alert_id),
            )
        incident.members[member.where] = member
        return Change(kind, incident.changed(), member.raised_at, member, new_plant)

    def _cleared(self, group: _Group, event: AlertEvent) -> list[Change]:
        incident = group.incident
        where = str(event.asset)
        if incident is None or incident.closed_at is not None:
            known = group.recent.get(where)
            if known is not None and known.alert_id == event.alert_id:
                group.recent[where] = replace(known, cleared_at=event.at)
            return []
        member = incident.members.get(where)
        if member is None or member.alert_id != event.alert_id or not member.active:
            return []
        member = incident.members[where] = replace(member, cleared_at=event.at)
        return [Change(ChangeKind.MEMBER_CLEARED, incident.changed(), event.at, member)]

    def advance(self, now: datetime) -> list[Change]:
        """Close incidents quiet for their hold time; forget what is older than a window.

        Both are measured on the group's own event time while its events keep coming (late
        data correlates and closes as it happened), and on `now` once it has been silent for as
        long (data that stopped still closes and is forgotten)."""
        changes = []
        for key, group in list(self.groups.items()):
            policy = self.config.for_issue(key[1])
            if policy is None:
                del self.groups[key]
                continue
            if group.arrived is None:
                group.arrived = now
            silent = now - group.arrived
            latest = group.latest or now
            incident = group.incident
            if incident is not None and incident.closed_at is None:
                quiet = incident.quiet_since()
                if quiet is not None and max(latest - quiet, silent) >= policy.hold:
                    # Closed as of the group's own time, which reopening is measured on.
                    closed = incident.closed_at = min(now, quiet + policy.hold)
                    changes.append(Change(ChangeKind.CLOSED, incident.changed(), closed))
            horizon = now if silent > policy.window else min(now, latest)
            if incident is not None and incident.closed_at is not None:
                too_late = horizon - incident.closed_at > policy.window
                group.incident = None if too_late else incident
            _prune(group, horizon - policy.window)
            if group.incident is None and not group.recent:
                del self.groups[key]
        return changes

    def open_incidents(self) -> Iterable[Incident]:
        for group in self.groups.values():
            if group.incident is not None and group.incident.closed_at is None:
                yield group.incident


def _known(group: _Group, member: Member) -> bool:
    """This very alert is already in the incident or among the recent raises."""
    if group.incident is not None:
        joined = group.incident.members.get(member.where)
        if joined is not None and member.alert_id in joined.alert_ids:
            return True
    recent = group.recent.get(member.where)
    return recent is not None and recent.alert_id == member.alert_id


def _prune(group: _Group, before: datetime) -> None:
    for where in [w for w, m in group.recent.items() if m.raised_at < before]:
        del group.recent[where]
