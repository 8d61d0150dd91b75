"""Suppression by design: while a gateway has a comms-loss alarm, every alarm of the machines
whose data comes through it is suppressed (their silence, their frozen values, their stale
series are the same fault seen again), and shown again when the gateway is back. Suppressed
alarms are recorded and shown, never notified or escalated (ISA-18.2's "suppressed by design").

The machines of a gateway are known from the alert events themselves: each names the gateway
its machine's data came through. Planned maintenance (maintenance.py) suppresses a machine's
alarms the same way for the time of its window."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from alerting.lifecycle.machine import Action
from alerting.records.schema import alarms
from alerting.records.windows import active_window
from alerting.rules.stale_gateways import GATEWAY_AREA

SUPPRESSING_ISSUE_TYPES = frozenset({"comms-loss"})

Change = Callable[[Row[Any], Action, str], Awaitable[Any]]
"""The store's way to apply an action to a locked alarm row with a reason."""


def suppresses(row: Any) -> bool:
    """Is this alarm (a row or an event's fields) a gateway's comms loss?"""
    return bool(row.area == GATEWAY_AREA and row.issue_type in SUPPRESSING_ISSUE_TYPES)


def reason(gateway_alarm: Any) -> str:
    return (
        f"comms-loss of gateway {gateway_alarm.plant}/{gateway_alarm.machine} "
        f"(alarm {gateway_alarm.id})"
    )


async def reason_for(
    conn: AsyncConnection,
    plant: str,
    area: str,
    machine: str,
    gateway_id: str | None,
    now: datetime,
) -> str | None:
    """Why a new alarm of this machine is born suppressed (None: it is not): its machine is in
    planned maintenance, or its gateway has lost its link."""
    window = await active_window(conn, plant, machine, now)
    if window is not None:
        return window.why
    if gateway_id is None or area == GATEWAY_AREA:
        return None
    query = select(alarms).where(
        alarms.c.plant == plant,
        alarms.c.area == GATEWAY_AREA,
        alarms.c.machine == gateway_id,
        alarms.c.issue_type.in_(SUPPRESSING_ISSUE_TYPES),
        alarms.c.active.is_(True),
        alarms.c.open_key.is_not(None),
    )
    found = (await conn.execute(query)).first()
    return None if found is None else reason(found)


async def cascade(conn: AsyncConnection, gateway_alarm: Row[Any], change: Change) -> list[Any]:
    """After the gateway's comms-loss alarm changed: suppress its machines' open alarms while
    it is active, show again those it suppressed once it is not."""
    why = reason(gateway_alarm)
    if gateway_alarm.active and gateway_alarm.open_key is not None:
        query = select(alarms).where(
            alarms.c.plant == gateway_alarm.plant,
            alarms.c.gateway_id == gateway_alarm.machine,
            alarms.c.area != GATEWAY_AREA,
            alarms.c.open_key.is_not(None),
            alarms.c.suppressed_by.is_(None),
        )
        action = Action.SUPPRESS
    else:
        query = select(alarms).where(alarms.c.suppressed_by == why, alarms.c.open_key.is_not(None))
        action = Action.UNSUPPRESS
    rows: Sequence[Row[Any]] = (
        await conn.execute(query.order_by(alarms.c.id).with_for_update())
    ).all()
    made = [await change(row, action, why) for row in rows]
    return [m for m in made if m is not None]
