"""What each action does to an alarm: a pure function, no clock and no database, so the same
rules hold in the service, the API and the tests.

The detection's RAISED and CLEARED move the condition; people acknowledge, shelve, resolve;
timers (due-time rows, never sleeping tasks) re-alarm and end timed shelving. An action that
makes no sense in the alarm's state (acknowledging twice, shelving a closed alarm) is refused
with a reason the API returns as 409, and nothing is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from alerting.lifecycle.states import Alarm, Shelving


class Action(StrEnum):
    RAISE = "raise"
    CLEAR = "clear"
    ACKNOWLEDGE = "acknowledge"
    SHELVE = "shelve"
    UNSHELVE = "unshelve"
    SHELF_EXPIRED = "shelf_expired"
    SUPPRESS = "suppress"
    UNSUPPRESS = "unsuppress"
    REMOVE_FROM_SERVICE = "remove_from_service"
    RETURN_TO_SERVICE = "return_to_service"
    RESOLVE = "resolve"
    RE_ALARM = "re_alarm"

    @property
    def by_people(self) -> bool:
        return self in PEOPLE_ACTIONS


PEOPLE_ACTIONS = frozenset(
    {
        Action.ACKNOWLEDGE,
        Action.SHELVE,
        Action.UNSHELVE,
        Action.REMOVE_FROM_SERVICE,
        Action.RETURN_TO_SERVICE,
        Action.RESOLVE,
    }
)


class LifecycleError(ValueError):
    """The action does not apply to the alarm in its present state."""


@dataclass(frozen=True, slots=True)
class Request:
    action: Action
    at: datetime
    shelving: Shelving | None = None
    until: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    max_shelve: timedelta = timedelta(hours=8)
    """ISA-18.2: shelving is temporary; a longer time is refused, not cut short silently."""
    re_alarm_after: timedelta | None = None
    """An acknowledged alarm still active this long is unacknowledged again (None: never)."""


def apply(alarm: Alarm, request: Request, policy: Policy = Policy()) -> Alarm:
    """The alarm after the request; the same object when the request changes nothing (a
    duplicate RAISED, a timer that is no longer due). Raises LifecycleError when refused."""
    if alarm.closed and request.action is not Action.RAISE:
        raise LifecycleError("the alarm is back to normal: this occurrence is over")
    handler = _HANDLERS[request.action]
    return handler(alarm, request, policy)


def _raise(alarm: Alarm, request: Request, policy: Policy) -> Alarm:
    if alarm.active:
        return alarm
    # Active again: it needs a new acknowledgement and a new resolution.
    return replace(alarm, active=True, acknowledged=False, resolved=False)


def _clear(alarm: Alarm, request: Request, policy: Policy) -> Alarm:
    if not alarm.active:
        return alarm
    one_shot = alarm.shelving is Shelving.ONE_SHOT
    return replace(
        alarm,
        active=False,
        acknowledged=alarm.acknowledged or alarm.resolved,
        shelving=None if one_shot else alarm.shelving,
        shelved_until=None if one_shot else alarm.shelved_until,
    )


def _acknowledge(alarm: Alarm, request: Request, policy: Policy) -> Alarm:
    if alarm.acknowledged:
        raise LifecycleError("already acknowledged")
    return replace(alarm, acknowledged=True)


def _shelve(alarm: Alarm, request: Request, policy: Policy) -> Alarm:
    if alarm.shelved:
        raise LifecycleError("already shelved: unshelve first to change it")
    if request.shelving is Shelving.ONE_SHOT:
        if not alarm.active:
            raise LifecycleError("one-shot shelving lasts until the condition clears: it has")
        return replace(alarm, shelving=Shelving.ONE_SHOT, shelved_until=None)
    if request.until is None:
        raise LifecycleError("timed shelving needs an end time")
    if request.until <= request.at:
        raise LifecycleError("the shelving's end time has passed")
    if request.until - request.at > policy.max_shelve:
        raise LifecycleError(f"shelving is limited to {policy.max_shelve}")
    return replace(alarm, shelving=Shelving.TIMED, shelved_until=request.until)


def _unshelve(alarm: Alarm, request: Request, policy: Policy) -> Alarm:
    if not alarm.shelved:
        raise LifecycleError("not shelved")
    return replace(alarm, shelving=None, shelved_until=None)


def _shelf_expired(alarm: Alarm, request: Request, policy: Policy) -> Alarm:
    until = alarm.shelved_until
    if alarm.shelving is not Shelving.TIMED or until is None or until > request.at:
        return alarm
    return replace(alarm, shelving=None, shelved_until=None)


def _suppress(alarm: Alarm, request: Request, policy: Policy) -> Alarm:
    reason = request.reason or "suppressed by design"
    return alarm if alarm.suppressed_by == reason else replace(alarm, suppressed_by=reason)


def _unsuppress(alarm: Alarm, request: Request, policy: Policy) -> Alarm:
    return alarm if alarm.suppressed_by is None else replace(alarm, suppressed_by=None)


def _remove_from_service(alarm: Alarm, request: Request, policy: Policy) -> Alarm:
    if alarm.out_of_service:
        raise LifecycleError("already out of service")
    if not request.reason:
        raise LifecycleError("taking an alarm out of service needs a reason")
    return replace(alarm, out_of_service=True)


def _return_to_service(alarm: Alarm, request: Request, policy: Policy) -> Alarm:
    if not alarm.out_of_service:
        raise LifecycleError("not out of service")
    return replace(alarm, out_of_service=False)


def _resolve(alarm: Alarm, request: Request, policy: Policy) -> Alarm:
    if alarm.resolved:
        raise LifecycleError("already resolved")
    # A resolution acknowledges; the occurrence ends when the condition has cleared too.
    return replace(alarm, resolved=True, acknowledged=True)


def _re_alarm(alarm: Alarm, request: Request, policy: Policy) -> Alarm:
    if not (alarm.active and alarm.acknowledged) or alarm.resolved:
        return alarm
    return replace(alarm, acknowledged=False)


_HANDLERS = {
    Action.RAISE: _raise,
    Action.CLEAR: _clear,
    Action.ACKNOWLEDGE: _acknowledge,
    Action.SHELVE: _shelve,
    Action.UNSHELVE: _unshelve,
    Action.SHELF_EXPIRED: _shelf_expired,
    Action.SUPPRESS: _suppress,
    Action.UNSUPPRESS: _unsuppress,
    Action.REMOVE_FROM_SERVICE: _remove_from_service,
    Action.RETURN_TO_SERVICE: _return_to_service,
    Action.RESOLVE: _resolve,
    Action.RE_ALARM: _re_alarm,
}
