"""The states of an alarm after ISA-18.2 (and OPC UA Part 9, Alarms and Conditions).

An alarm has a condition the machine decides (active or not, from the rules' RAISED and
CLEARED) and an acknowledgement people give. Their four combinations are the alarm states.
Shelving, suppression by design and out-of-service do not change those: they hide the alarm
from the people it would notify, so they are kept beside the state, not instead of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from plantmesh.contracts import AlarmState


class Shelving(StrEnum):
    ONE_SHOT = "one_shot"
    """Until the condition clears, then the alarm is unshelved by itself."""
    TIMED = "timed"
    """Until a time (never longer than the configured maximum)."""


@dataclass(frozen=True, slots=True)
class Alarm:
    """One occurrence of an alarm: from its RAISED until it is back to normal. Deduplicated by
    (rule, asset, signal): at most one occurrence of a key is open at a time."""

    active: bool
    acknowledged: bool
    shelving: Shelving | None = None
    shelved_until: datetime | None = None
    suppressed_by: str | None = None
    """Why the alarm is suppressed by design, e.g. the gateway's comms-loss alert id."""
    out_of_service: bool = False
    resolved: bool = False
    """Someone said the problem is fixed; the occurrence ends once the condition clears."""

    @property
    def state(self) -> AlarmState:
        return AlarmState.of(self.active, self.acknowledged)

    @property
    def shelved(self) -> bool:
        return self.shelving is not None

    @property
    def hidden(self) -> bool:
        """Not annunciated: nobody is notified or escalated to while this holds."""
        return self.shelved or self.suppressed_by is not None or self.out_of_service

    @property
    def closed(self) -> bool:
        return self.state is AlarmState.NORMAL


RAISED = Alarm(active=True, acknowledged=False)
"""A new occurrence."""
