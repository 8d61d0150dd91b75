"""What a scorecard needs to know of one alarm occurrence, read from its row and its trail.

Pure: `facts_of` turns an alarm row and its trail entries into `AlarmFacts`; the database read
is alerting/scorecards/source.py. Times are recorded (wall) times, the ones people lived: an
alarm counts when it was annunciated, not when the machine's data said it began.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerting.records.schema import aware

ANSWERS = frozenset({"acknowledge", "resolve"})
"""The first of these is the response time to acknowledge counts to (as the alarm API does)."""
ESCALATIONS = frozenset({"escalate", "re_escalate"})
SHELF_ENDS = frozenset({"unshelve", "shelf_expired"})


@dataclass(frozen=True, slots=True)
class Interval:
    start: datetime
    end: datetime | None
    """None: still going."""


@dataclass(frozen=True, slots=True)
class AlarmFacts:
    plant: str
    line: str
    machine: str
    signal: str
    rule: str
    priority: str
    opened_at: datetime
    answered_at: datetime | None = None
    """First acknowledgement or resolution, by anyone."""
    cleared_at: datetime | None = None
    """The condition went away (first return to normal of the process)."""
    closed_at: datetime | None = None
    """Back to normal: cleared and acknowledged, the end of the occurrence."""
    annunciated: bool = False
    """Someone was told under an escalation policy (the row names the policy)."""
    ack_within_s: float | None = None
    """The policy's first level's time to acknowledge; None when unknown."""
    escalated_at: datetime | None = None
    """First time a level past the first was told (escalation or re-escalation)."""
    shelvings: tuple[Interval, ...] = ()

    @property
    def series(self) -> tuple[str, str, str, str]:
        """One line of an operator's alarm list: the same rule on the same signal."""
        return self.plant, self.machine, self.signal, self.rule


def facts_of(
    row: Any, trail: Sequence[Any], ack_within: Callable[[str], float | None]
) -> AlarmFacts:
    """`ack_within(policy name)`: that policy's first level's time to acknowledge, if known."""
    answered = cleared = escalated = None
    shelvings: list[Interval] = []
    shelved_since: datetime | None = None
    for entry in trail:
        at = aware(entry.at)
        action = entry.action
        if action in ANSWERS and answered is None:
            answered = at
        elif action == "clear" and cleared is None:
            cleared = at
        elif action in ESCALATIONS and escalated is None and _level(entry) >= 2:
            escalated = at
        if action == "shelve" and shelved_since is None:
            shelved_since = at
        elif shelved_since is not None and _ends_shelving(entry):
            shelvings.append(Interval(shelved_since, at))
            shelved_since = None
    if shelved_since is not None:
        shelvings.append(Interval(shelved_since, None))
    policy = row.escalation_policy
    return AlarmFacts(
        plant=row.plant,
        line=row.line,
        machine=row.machine,
        signal=row.signal,
        rule=row.rule,
        priority=row.priority,
        opened_at=aware(row.opened_at),
        answered_at=answered,
        cleared_at=cleared,
        closed_at=aware(row.closed_at) if row.closed_at is not None else None,
        annunciated=policy is not None,
        ack_within_s=ack_within(policy) if policy is not None else None,
        escalated_at=escalated,
        shelvings=tuple(shelvings),
    )


def _ends_shelving(entry: Any) -> bool:
    """Unshelved, expired, back to normal, or shown again (a one-shot shelf ends when the
    condition clears: every trail entry says whether the alarm is still hidden after it)."""
    if entry.action in SHELF_ENDS or entry.to_state == "normal":
        return True
    return _details(entry).get("hidden") is False


def _details(entry: Any) -> dict[str, Any]:
    return entry.details if isinstance(entry.details, dict) else {}


def _level(entry: Any) -> int:
    details = _details(entry)
    level = details.get("level", 0)
    return level if isinstance(level, int) else 0
