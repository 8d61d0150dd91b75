"""The life of an alarm after detection, as people and dashboards follow it: each transition
(acknowledged, shelved, returned to normal, escalated ...) is one AlarmTransition on
`alerts.events`, beside the detection's own AlertEvents (RAISED, CLEARED).

The two contracts share the topic so that one subscription follows an alert from its raise to
its end. A record says which contract it holds in its `plantmesh-contract` header; readers that
want only the detection's events skip the others by that header, without decoding them."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from plantmesh.contracts.alerts import Severity
from plantmesh.contracts.common import AssetPath, AwareDatetime, Name, WireModel

CONTRACT_HEADER = "plantmesh-contract"
ALARM_TRANSITION_CONTRACT = "alarm-transition/1"


class AlarmState(StrEnum):
    """ISA-18.2's alarm states (condition x acknowledgement)."""

    ACTIVE_UNACKNOWLEDGED = "active_unacknowledged"
    ACTIVE_ACKNOWLEDGED = "active_acknowledged"
    RETURNED_UNACKNOWLEDGED = "returned_unacknowledged"
    """The condition cleared before anybody acknowledged: someone must still see it."""
    NORMAL = "normal"
    """Cleared and acknowledged: this occurrence is over."""

    @classmethod
    def of(cls, active: bool, acknowledged: bool) -> AlarmState:
        if active:
            return cls.ACTIVE_ACKNOWLEDGED if acknowledged else cls.ACTIVE_UNACKNOWLEDGED
        return cls.NORMAL if acknowledged else cls.RETURNED_UNACKNOWLEDGED


class AlarmTransition(WireModel):
    contract: Literal["alarm-transition/1"] = "alarm-transition/1"
    alarm_id: str
    seq: Annotated[int, Field(ge=1)]
    """The trail entry's number: unique, and ascending in the order things happened."""
    action: Name
    """raise, clear, acknowledge, shelve, unshelve, shelf_expired, suppress, unsuppress,
    remove_from_service, return_to_service, resolve, re_alarm, escalate ..."""
    actor: Annotated[str, Field(min_length=1, max_length=128)]
    """`detection`, `timer`, or the person's token name as `user:<name>`."""
    from_state: AlarmState | None = None
    to_state: AlarmState
    hidden: bool
    """Shelved, suppressed by design or out of service: nobody is notified of it."""
    at: AwareDatetime
    """When it was recorded (wall time)."""
    issue_type: Name
    rule: Name
    machine_class: Name | None = None
    asset: AssetPath
    signal: Name
    priority: Severity
    text: str | None = None


def is_transition(headers: Sequence[tuple[str, bytes]] | None) -> bool:
    """Does a record of alerts.events hold an AlarmTransition (rather than an AlertEvent)?"""
    return any(
        name == CONTRACT_HEADER and value == ALARM_TRANSITION_CONTRACT.encode()
        for name, value in headers or ()
    )
