"""The ISA-18.2 alarm lifecycle as a pure function: each action's effect, what is refused, and
invariants that hold for any sequence of actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerting.lifecycle.machine import Action, LifecycleError, Policy, Request, apply
from alerting.lifecycle.states import RAISED, Alarm, Shelving
from plantmesh.contracts import AlarmState

T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


def _do(alarm: Alarm, action: Action, minutes: float = 0, **kw: object) -> Alarm:
    return apply(alarm, Request(action, T0 + timedelta(minutes=minutes), **kw))  # type: ignore[arg-type]


def test_acknowledged_then_cleared_is_normal() -> None:
    acked = _do(RAISED, Action.ACKNOWLEDGE)
    assert acked.state is AlarmState.ACTIVE_ACKNOWLEDGED
    assert _do(acked, Action.CLEAR).state is AlarmState.NORMAL


def test_cleared_before_acknowledged_waits_for_someone() -> None:
    returned = _do(RAISED, Action.CLEAR)
    assert returned.state is AlarmState.RETURNED_UNACKNOWLEDGED
    assert not returned.closed
    assert _do(returned, Action.ACKNOWLEDGE).state is AlarmState.NORMAL


def test_raised_again_before_normal_needs_a_new_acknowledgement() -> None:
    again = _do(_do(RAISED, Action.CLEAR), Action.RAISE)
    assert again.state is AlarmState.ACTIVE_UNACKNOWLEDGED


def test_duplicate_raise_and_clear_change_nothing() -> None:
    assert _do(RAISED, Action.RAISE) is RAISED
    returned = _do(RAISED, Action.CLEAR)
    assert _do(returned, Action.CLEAR) is returned


def test_resolve_acknowledges_and_closes_once_the_condition_clears() -> None:
    resolved = _do(RAISED, Action.RESOLVE)
    assert resolved.state is AlarmState.ACTIVE_ACKNOWLEDGED
    assert _do(resolved, Action.CLEAR).state is AlarmState.NORMAL
    with pytest.raises(LifecycleError, match="already resolved"):
        _do(resolved, Action.RESOLVE)


def test_refusals_name_the_reason() -> None:
    acked = _do(RAISED, Action.ACKNOWLEDGE)
    with pytest.raises(LifecycleError, match="already acknowledged"):
        _do(acked, Action.ACKNOWLEDGE)
    closed = _do(acked, Action.CLEAR)
    with pytest.raises(LifecycleError, match="over"):
        _do(closed, Action.SHELVE, shelving=Shelving.ONE_SHOT)
    with pytest.raises(LifecycleError, match="not shelved"):
        _do(RAISED, Action.UNSHELVE)
    with pytest.raises(LifecycleError, match="needs a reason"):
        _do(RAISED, Action.REMOVE_FROM_SERVICE)


def test_one_shot_shelving_ends_when_the_condition_clears() -> None:
    shelved = _do(RAISED, Action.SHELVE, shelving=Shelving.ONE_SHOT)
    assert shelved.hidden
    assert shelved.state is AlarmState.ACTIVE_UNACKNOWLEDGED  # hidden, not acknowledged
    cleared = _do(shelved, Action.CLEAR)
    assert not cleared.shelved
    assert cleared.state is AlarmState.RETURNED_UNACKNOWLEDGED


def test_timed_shelving_is_bounded_and_expires_on_its_timer() -> None:
    policy = Policy(max_shelve=timedelta(hours=2))
    with pytest.raises(LifecycleError, match="limited to 2:00:00"):
        apply(
            RAISED,
            Request(Action.SHELVE, T0, Shelving.TIMED, until=T0 + timedelta(hours=3)),
            policy,
        )
    with pytest.raises(LifecycleError, match="needs an end time"):
        apply(RAISED, Request(Action.SHELVE, T0, Shelving.TIMED), policy)
    until = T0 + timedelta(hours=1)
    shelved = apply(RAISED, Request(Action.SHELVE, T0, Shelving.TIMED, until=until), policy)
    assert shelved.shelved_until == until
    early = apply(shelved, Request(Action.SHELF_EXPIRED, until - timedelta(seconds=1)))
    assert early is shelved  # a timer that is not due yet changes nothing
    assert not apply(shelved, Request(Action.SHELF_EXPIRED, until)).shelved
    still = _do(shelved, Action.CLEAR)
    assert still.shelved  # timed shelving outlives the condition


def test_re_alarm_takes_back_an_acknowledgement_left_standing() -> None:
    acked = _do(RAISED, Action.ACKNOWLEDGE)
    assert _do(acked, Action.RE_ALARM, 60).state is AlarmState.ACTIVE_UNACKNOWLEDGED
    resolved = _do(RAISED, Action.RESOLVE)
    assert _do(resolved, Action.RE_ALARM, 60) is resolved  # someone said it is fixed


def test_suppression_and_service_hide_without_acknowledging() -> None:
    suppressed = _do(RAISED, Action.SUPPRESS, reason="gateway gw-a comms-loss")
    assert suppressed.hidden
    assert suppressed.suppressed_by == "gateway gw-a comms-loss"
    assert not _do(suppressed, Action.UNSUPPRESS).hidden
    out = _do(RAISED, Action.REMOVE_FROM_SERVICE, reason="sensor replaced this week")
    assert out.hidden
    assert not _do(out, Action.RETURN_TO_SERVICE).hidden


ACTIONS = st.sampled_from(list(Action))


@given(st.lists(st.tuples(ACTIONS, st.sampled_from(list(Shelving)), st.integers(1, 600))))
def test_any_sequence_keeps_the_invariants(steps: list[tuple[Action, Shelving, int]]) -> None:
    alarm = RAISED
    for minute, (action, shelving, minutes) in enumerate(steps):
        at = T0 + timedelta(minutes=minute)
        request = Request(action, at, shelving, at + timedelta(minutes=minutes), "why")
        try:
            after = apply(alarm, request)
        except LifecycleError:
            continue
        if alarm.closed:
            # Only a RAISE reaches a closed alarm, and the store opens a new occurrence for it.
            assert action is Action.RAISE
            break
        assert after.closed == (not after.active and after.acknowledged)
        if after.resolved:
            assert after.acknowledged
        if after.shelving is Shelving.TIMED:
            assert after.shelved_until is not None
        if action is Action.RAISE and not alarm.active:
            assert after.state is AlarmState.ACTIVE_UNACKNOWLEDGED
        if not action.by_people and action not in (Action.RAISE, Action.CLEAR):
            assert after.active == alarm.active  # timers and suppression never move the condition
        alarm = after
