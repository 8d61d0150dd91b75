"""Escalation in the database: what a transition does to the alarm's place in its policy, its
escalation timers and the notifications it calls for. Runs inside the transition's
transaction, so the state, the trail entry, the next deadline and the deliveries are committed
together or not at all. The steps themselves are alerting/lifecycle/escalation.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Row, update
from sqlalchemy.ext.asyncio import AsyncConnection

from alerting.incidents.alarm import INCIDENT_RULE
from alerting.lifecycle import escalation
from alerting.lifecycle.escalation import Position
from alerting.lifecycle.policies import EscalationConfig, EscalationPolicy
from alerting.lifecycle.states import Alarm
from alerting.records import deliveries
from alerting.records.deliveries import DeliveryKind
from alerting.records.schema import alarms
from alerting.records.timers import TimerKind, clear_timer, set_timer
from plantmesh.contracts import Severity


def policy_of(config: EscalationConfig, row: Row[Any]) -> EscalationPolicy | None:
    if row.escalation_policy is not None:
        named = next((p for p in config.policies if p.name == row.escalation_policy), None)
        if named is not None:
            return named  # the policy it started under, even if a newer one would match first
    scope = "network" if row.rule == INCIDENT_RULE else "machine"
    return config.policy_for(row.issue_type, Severity(row.priority), scope)


def position_of(row: Row[Any]) -> Position | None:
    if row.escalation_level is None:
        return None
    return Position(row.escalation_level, row.escalation_round or 0)


async def _tell(
    conn: AsyncConnection,
    config: EscalationConfig,
    policy: EscalationPolicy,
    row: Row[Any],
    position: Position,
    seq: int,
    kind: DeliveryKind,
    now: datetime,
) -> None:
    """Notify the level at `position`, record where the alarm stands, start that level's clock."""
    contacts = config.contacts_for(row.plant, escalation.roles(policy, position))
    await deliveries.enqueue(conn, row.id, seq, kind, position.level + 1, contacts, now)
    await conn.execute(
        update(alarms)
        .where(alarms.c.id == row.id)
        .values(
            escalation_policy=policy.name,
            escalation_level=position.level,
            escalation_round=position.round,
        )
    )
    await set_timer(conn, row.id, TimerKind.ESCALATE, escalation.deadline(policy, position, now))


async def follow(
    conn: AsyncConnection,
    config: EscalationConfig,
    row: Row[Any],
    before: Alarm | None,
    after: Alarm,
    seq: int,
    now: datetime,
) -> None:
    """After a transition of the alarm in `row` (its values from before the transition)."""
    policy = policy_of(config, row)
    if policy is None:
        return
    position = position_of(row)
    if after.closed or (after.resolved and not (before and before.resolved)):
        await clear_timer(conn, row.id, TimerKind.ESCALATE)
        await clear_timer(conn, row.id, TimerKind.RE_ESCALATE)
        if not (before and (before.resolved or before.closed)):
            await _resolved(conn, config, row, seq, now)
        return
    if after.hidden:
        await clear_timer(conn, row.id, TimerKind.ESCALATE)
        return
    calling = after.active and not after.acknowledged
    was_calling = (
        before is not None and before.active and not before.acknowledged and not before.hidden
    )
    if calling and before is None:
        await _tell(conn, config, policy, row, escalation.START, seq, DeliveryKind.RAISED, now)
    elif calling and before is not None and not was_calling:
        # Raised again, re-alarmed, or shown again: the level it had reached is told again.
        kind = _why_again(before)
        await _tell(conn, config, policy, row, position or escalation.START, seq, kind, now)
    elif after.acknowledged and before is not None and not before.acknowledged:
        await clear_timer(conn, row.id, TimerKind.ESCALATE)
        due = escalation.resolve_deadline(policy, now)
        if due is not None and not after.resolved:
            await set_timer(conn, row.id, TimerKind.RE_ESCALATE, due)


def _why_again(before: Alarm) -> DeliveryKind:
    if before.hidden:
        return DeliveryKind.SHOWN
    if before.active and before.acknowledged:
        return DeliveryKind.RE_ALARMED
    return DeliveryKind.RAISED


async def _resolved(
    conn: AsyncConnection, config: EscalationConfig, row: Row[Any], seq: int, now: datetime
) -> None:
    """Everyone who was told gets the all-clear, hidden or not (Alertmanager #2754)."""
    await tell_told(conn, config, row, seq, DeliveryKind.RESOLVED, now)


async def tell_told(
    conn: AsyncConnection,
    config: EscalationConfig,
    row: Row[Any],
    seq: int,
    kind: DeliveryKind,
    now: datetime,
) -> None:
    """Notify everyone already told about the alarm (not its next level) of trail entry `seq`."""
    told = await deliveries.notified(conn, row.id)
    if not told:
        return
    contacts = [c for c in config.contacts if any(c.name == name for name, _ in told)]
    await deliveries.enqueue(conn, row.id, seq, kind, None, contacts, now)


async def climb(
    conn: AsyncConnection,
    config: EscalationConfig,
    row: Row[Any],
    alarm: Alarm,
    kind: TimerKind,
    seq_of: Callable[[Position], Awaitable[int]],
    now: datetime,
) -> Position | None:
    """A level's time ran out (ESCALATE) or a resolution is overdue (RE_ESCALATE): tell the next
    level. `seq_of(position)` appends the trail entry and returns its number. None when there
    is nothing to do (acknowledged meanwhile, hidden, or the policy is exhausted)."""
    policy = policy_of(config, row)
    current = position_of(row)
    if policy is None or current is None or alarm.hidden or alarm.closed:
        return None
    if kind is TimerKind.ESCALATE and (alarm.acknowledged or not alarm.active):
        return None  # answered, or the condition went away: nobody needs to run
    if kind is TimerKind.RE_ESCALATE and (not alarm.acknowledged or alarm.resolved):
        return None
    following = escalation.after(policy, current)
    if following is None:
        return None
    seq = await seq_of(following)
    why = DeliveryKind.ESCALATED if kind is TimerKind.ESCALATE else DeliveryKind.RE_ESCALATED
    await _tell(conn, config, policy, row, following, seq, why, now)
    if kind is TimerKind.RE_ESCALATE:
        await clear_timer(conn, row.id, TimerKind.ESCALATE)
        due = escalation.resolve_deadline(policy, now)
        if due is not None:
            await set_timer(conn, row.id, TimerKind.RE_ESCALATE, due)
    return following
