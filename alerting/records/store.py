"""Alarms in the database: the detection's events and people's actions go through the pure
lifecycle (alerting/lifecycle/machine.py) and land as the alarm's new state plus an entry of
its append-only trail, in one transaction.

Idempotent by construction: a detection event is recorded at most once (the trail's
`source_event` is unique), so Kafka's at-least-once delivery and replays change nothing.
Concurrency: the alarm's row is locked (`FOR UPDATE` in PostgreSQL; SQLite has one writer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alerting.lifecycle.escalation import Position
from alerting.lifecycle.machine import Action, Policy, Request, apply
from alerting.lifecycle.policies import EscalationConfig
from alerting.lifecycle.states import RAISED, Alarm, Shelving
from alerting.records import escalating, outbox, suppression, timers
from alerting.records.queries import AlarmNotFoundError
from alerting.records.rows import alarm_of, columns_of, event_details, open_key
from alerting.records.schema import alarm_trail, alarms
from alerting.records.timers import TimerKind
from plantmesh.contracts import (
    AlarmTransition,
    AlertEvent,
    AlertEventKind,
    AssetPath,
    Severity,
)

Clock = Callable[[], datetime]
DETECTION = "detection"
"""The actor of RAISED and CLEARED: the rules, not a person."""
TIMER = "timer"
"""The actor of re-alarms and of timed shelving's end."""
SUPPRESSION = "suppression"
"""The actor of suppression by design (a gateway's comms loss)."""


class AlarmStore:
    def __init__(
        self,
        engine: AsyncEngine,
        policy: Policy | None = None,
        clock: Clock = lambda: datetime.now(UTC),
        *,
        escalation: EscalationConfig | None = None,
        sinks: Sequence[str] = (),
    ) -> None:
        """`escalation`: policies and contacts (None: nobody is notified); `sinks`: the outbox
        sinks every trail entry is queued for (e.g. "kafka", "influx", "andon")."""
        self.engine = engine
        self.policy = policy or Policy()
        self.escalation = escalation
        self.sinks = tuple(sinks)
        self.clock = clock
        self.on_change: Callable[[], None] | None = None
        """Called after a commit that made transitions (wakes the delivery and outbox stages)."""

    def notify_change(self, made: object) -> None:
        """After a commit: wake whoever waits for transitions, if there were any."""
        if made and self.on_change is not None:
            self.on_change()

    # --- the detection's events ---------------------------------------------------------------
    async def record(self, event: AlertEvent) -> list[AlarmTransition]:
        """Apply one RAISED or CLEARED: its transition, and those of the alarms a gateway's comms
        loss suppresses or shows again. Empty when it changes nothing (a duplicate, a replay, a
        CLEARED for an occurrence already over)."""
        source = f"{event.alert_id}:{event.kind.value}"
        try:
            async with self.engine.begin() as conn:
                if await self._seen(conn, source):
                    return []
                if event.kind is AlertEventKind.RAISED:
                    made = await self._raised(conn, event, source)
                else:
                    made = await self._cleared(conn, event, source)
                if made is None:
                    return []
                changes = [made, *await self._cascade(conn, made.alarm_id)]
            self.notify_change(changes)
            return changes
        except IntegrityError:
            # Another process recorded the same event (or opened the same key) first.
            return []

    async def _cascade(self, conn: AsyncConnection, alarm_id: str) -> list[AlarmTransition]:
        row = await self.locked(conn, alarm_id)
        if not suppression.suppresses(row):
            return []

        async def change(target: Row[Any], action: Action, why: str) -> AlarmTransition | None:
            request = Request(action, self.clock(), reason=why)
            return await self.change(conn, target, request, SUPPRESSION, why)

        return await suppression.cascade(conn, row, change)

    async def _seen(self, conn: AsyncConnection, source: str) -> bool:
        query = select(alarm_trail.c.seq).where(alarm_trail.c.source_event == source)
        return (await conn.execute(query)).first() is not None

    async def _open_row(self, conn: AsyncConnection, key: str) -> Row[Any] | None:
        query = select(alarms).where(alarms.c.open_key == key).with_for_update()
        return (await conn.execute(query)).first()

    async def _raised(
        self, conn: AsyncConnection, event: AlertEvent, source: str
    ) -> AlarmTransition | None:
        now = self.clock()
        row = await self._open_row(conn, open_key(event))
        if row is None:
            asset = event.asset
            why = await suppression.reason_for(
                conn, asset.plant, asset.area, asset.machine, event.gateway_id, now
            )
            first = replace(RAISED, suppressed_by=why)
            await conn.execute(
                insert(alarms).values(
                    id=event.alert_id,
                    open_key=open_key(event),
                    rule=event.rule,
                    rule_version=event.rule_version,
                    issue_type=event.issue_type,
                    machine_class=event.machine_class,
                    plant=event.asset.plant,
                    area=event.asset.area,
                    line=event.asset.line,
                    machine=event.asset.machine,
                    signal=event.signal,
                    gateway_id=event.gateway_id,
                    priority=event.severity.value,
                    assignee=None,
                    raised_at=event.at,
                    opened_at=now,
                    updated_at=now,
                    evidence=event.evidence.model_dump(mode="json"),
                    **columns_of(first),
                )
            )
            await timers.follow(conn, event.alert_id, None, first, now, self.policy)
            return await self.append(
                conn,
                await self.locked(conn, event.alert_id),
                Action.RAISE,
                DETECTION,
                None,
                first,
                now,
                event_at=event.at,
                source=source,
                details=event_details(event),
            )
        return await self.change(
            conn,
            row,
            Request(Action.RAISE, now),
            DETECTION,
            None,
            event_at=event.at,
            source=source,
            details=event_details(event),
            extra={"evidence": event.evidence.model_dump(mode="json")},
        )

    async def _cleared(
        self, conn: AsyncConnection, event: AlertEvent, source: str
    ) -> AlarmTransition | None:
        row = await self._open_row(conn, open_key(event))
        if row is None:
            return None
        return await self.change(
            conn,
            row,
            Request(Action.CLEAR, self.clock()),
            DETECTION,
            None,
            event_at=event.at,
            source=source,
            details=event_details(event),
        )

    # --- people and timers ------------------------------------------------------------------
    async def act(
        self,
        alarm_id: str,
        action: Action,
        actor: str,
        *,
        text: str | None = None,
        shelving: Shelving | None = None,
        until: datetime | None = None,
    ) -> AlarmTransition | None:
        """Acknowledge, shelve, resolve ... as `actor`. LifecycleError when refused,
        AlarmNotFoundError for an unknown id."""
        async with self.engine.begin() as conn:
            row = await self.locked(conn, alarm_id)
            request = Request(action, self.clock(), shelving, until, text)
            made = await self.change(conn, row, request, actor, text)
        self.notify_change(made)
        return made

    async def fire_due(self, limit: int = 100) -> list[AlarmTransition]:
        """Fire the timers that are due (re-alarm, end of timed shelving): each in a transaction
        of its own, the alarm locked first as by every action."""
        now = self.clock()
        async with self.engine.connect() as conn:
            found = await timers.due(conn, now, limit)
        fired = []
        for timer in found:
            async with self.engine.begin() as conn:
                query = select(alarms).where(alarms.c.id == timer.alarm_id)
                row = (await conn.execute(query.with_for_update(skip_locked=True))).first()
                if row is None or not await timers.claim(conn, timer):
                    continue  # being changed by another process, or fired by one
                action = timer.kind.action
                if action is None:
                    fired += await self._climb(conn, row, timer.kind, now)
                elif change := await self.change(conn, row, Request(action, now), TIMER, None):
                    fired.append(change)
        self.notify_change(fired)
        return fired

    async def _climb(
        self, conn: AsyncConnection, row: Row[Any], kind: TimerKind, now: datetime
    ) -> list[AlarmTransition]:
        """An escalation timer: the next level is told, as a trail entry of its own."""
        if self.escalation is None:
            return []
        alarm = alarm_of(row)
        made: list[AlarmTransition] = []

        async def entry(position: Position) -> int:
            details = {"level": position.level + 1, "round": position.round + 1}
            made.append(
                await self.append(
                    conn,
                    row,
                    kind.value,
                    TIMER,
                    alarm,
                    alarm,
                    now,
                    text=position.shown,
                    details=details,
                    follow=False,
                )
            )
            return made[-1].seq

        await escalating.climb(conn, self.escalation, row, alarm, kind, entry, now)
        return made

    async def locked(self, conn: AsyncConnection, alarm_id: str) -> Row[Any]:
        query = select(alarms).where(alarms.c.id == alarm_id).with_for_update()
        row = (await conn.execute(query)).first()
        if row is None:
            raise AlarmNotFoundError(f"no alarm {alarm_id!r}")
        return row

    async def change(
        self,
        conn: AsyncConnection,
        row: Row[Any],
        request: Request,
        actor: str,
        text: str | None,
        *,
        event_at: datetime | None = None,
        source: str | None = None,
        details: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> AlarmTransition | None:
        before = alarm_of(row)
        after = apply(before, request, self.policy)
        if after == before:
            return None
        now = request.at
        values: dict[str, Any] = {"updated_at": now, **columns_of(after), **(extra or {})}
        if after.acknowledged and not before.acknowledged and row.acknowledged_at is None:
            values["acknowledged_at"] = now
        if after.closed:
            values.update(open_key=None, closed_at=now)
        await conn.execute(update(alarms).where(alarms.c.id == row.id).values(**values))
        await timers.follow(conn, row.id, before, after, now, self.policy)
        return await self.append(
            conn,
            row,
            request.action,
            actor,
            before,
            after,
            now,
            text=text,
            event_at=event_at,
            source=source,
            details=details or {},
        )

    async def append(
        self,
        conn: AsyncConnection,
        row: Row[Any],
        action: Action | str,
        actor: str,
        before: Alarm | None,
        after: Alarm,
        at: datetime,
        *,
        text: str | None = None,
        event_at: datetime | None = None,
        source: str | None = None,
        details: dict[str, Any] | None = None,
        follow: bool = True,
    ) -> AlarmTransition:
        """Append to the trail; the entry as the transition the lifecycle publishes. Queues it
        for the outbox's sinks, and (`follow`) lets escalation react to the change."""
        name = action.value if isinstance(action, Action) else action
        inserted = await conn.execute(
            insert(alarm_trail)
            .values(
                alarm_id=row.id,
                at=at,
                event_at=event_at,
                action=name,
                actor=actor,
                from_state=None if before is None else before.state.value,
                to_state=after.state.value,
                text=text,
                details={**(details or {}), "hidden": after.hidden},
                source_event=source,
            )
            .returning(alarm_trail.c.seq)
        )
        transition = AlarmTransition(
            alarm_id=row.id,
            seq=inserted.scalar_one(),
            action=name,
            actor=actor,
            from_state=None if before is None else before.state,
            to_state=after.state,
            hidden=after.hidden,
            at=at,
            issue_type=row.issue_type,
            rule=row.rule,
            machine_class=row.machine_class,
            asset=AssetPath(plant=row.plant, area=row.area, line=row.line, machine=row.machine),
            signal=row.signal,
            priority=Severity(row.priority),
            text=text,
        )
        await outbox.enqueue(conn, transition, self.sinks, at)
        if follow and self.escalation is not None and before != after:
            await escalating.follow(conn, self.escalation, row, before, after, transition.seq, at)
        return transition
