"""Where an alarm's escalation goes next: pure, from the policy and the alarm's position in it.

Level 1 is told when the alarm is raised; each level that does not acknowledge within its
time hands over to the next; after the last level the policy starts again from level 1 until
it has run `repeat` times. An acknowledgement stops the climb; if the policy wants resolutions
within a time, an acknowledged alarm left unresolved that long climbs one level further. A
hidden alarm (shelved, suppressed, out of service) is not escalated; when it shows again while
still unacknowledged, its current level is told again and its clock restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerting.lifecycle.policies import EscalationPolicy


@dataclass(frozen=True, slots=True)
class Position:
    level: int
    """0-based index into the policy's levels."""
    round: int
    """0-based: how many times the levels have been run through before this one."""

    @property
    def shown(self) -> str:
        return f"level {self.level + 1}" + (f", round {self.round + 1}" if self.round else "")


START = Position(0, 0)


def after(policy: EscalationPolicy, position: Position) -> Position | None:
    """The next level to tell; None when the policy is exhausted."""
    if position.level + 1 < len(policy.levels):
        return Position(position.level + 1, position.round)
    if position.round + 1 < policy.repeat:
        return Position(0, position.round + 1)
    return None


def deadline(policy: EscalationPolicy, position: Position, told_at: datetime) -> datetime:
    """When the level at `position`, told at `told_at`, has run out of time to acknowledge."""
    return told_at + timedelta(seconds=policy.levels[position.level].ack_within_s)


def resolve_deadline(policy: EscalationPolicy, acknowledged_at: datetime) -> datetime | None:
    if policy.resolve_within_s is None:
        return None
    return acknowledged_at + timedelta(seconds=policy.resolve_within_s)


def roles(policy: EscalationPolicy, position: Position) -> list[str]:
    return list(policy.levels[position.level].roles)
