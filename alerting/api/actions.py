"""Acting on alarms: acknowledge, shelve and unshelve, resolve, take out of service and back,
comment, assign. Each checks the caller's role and scope, then goes through the lifecycle; a
refused step is 409 with the reason."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from alerting.api.auth import Caller, alarm_for, store_of
from alerting.api.models import (
    AcknowledgeIn,
    AlarmDetail,
    AssignIn,
    CommentIn,
    OptionalReasonIn,
    ReasonIn,
    ShelveIn,
)
from alerting.api.reads import show
from alerting.api.roles import Permission
from alerting.lifecycle.machine import Action, LifecycleError
from alerting.lifecycle.states import Shelving
from alerting.records import notes

router = APIRouter(prefix="/api/v1")


async def act(
    request: Request,
    caller: Caller,
    alarm_id: str,
    need: Permission,
    action: Action,
    text: str | None,
    **kw: Any,
) -> AlarmDetail:
    store = store_of(request)
    await alarm_for(store.engine, caller, alarm_id, need)
    try:
        await store.act(alarm_id, action, caller.actor, text=text, **kw)
    except LifecycleError as exc:
        raise HTTPException(409, str(exc)) from None
    return await show(request, caller, alarm_id)


@router.post("/alarms/{alarm_id}/acknowledge", response_model=AlarmDetail)
async def acknowledge(
    request: Request, caller: Caller, alarm_id: str, body: AcknowledgeIn | None = None
) -> AlarmDetail:
    text = body.comment if body else None
    return await act(request, caller, alarm_id, Permission.ACKNOWLEDGE, Action.ACKNOWLEDGE, text)


@router.post("/alarms/{alarm_id}/shelve", response_model=AlarmDetail)
async def shelve(request: Request, caller: Caller, alarm_id: str, body: ShelveIn) -> AlarmDetail:
    if body.one_shot == (body.duration_s is not None):
        raise HTTPException(422, "give either duration_s (timed) or one_shot: true")
    store = store_of(request)
    until = None
    if body.duration_s is not None:
        until = store.clock() + timedelta(seconds=body.duration_s)
    how = Shelving.ONE_SHOT if body.one_shot else Shelving.TIMED
    return await act(
        request,
        caller,
        alarm_id,
        Permission.SHELVE,
        Action.SHELVE,
        body.reason,
        shelving=how,
        until=until,
    )


@router.post("/alarms/{alarm_id}/unshelve", response_model=AlarmDetail)
async def unshelve(
    request: Request, caller: Caller, alarm_id: str, body: OptionalReasonIn | None = None
) -> AlarmDetail:
    text = body.reason if body else None
    return await act(request, caller, alarm_id, Permission.SHELVE, Action.UNSHELVE, text)


@router.post("/alarms/{alarm_id}/resolve", response_model=AlarmDetail)
async def resolve(
    request: Request, caller: Caller, alarm_id: str, body: AcknowledgeIn | None = None
) -> AlarmDetail:
    text = body.comment if body else None
    return await act(request, caller, alarm_id, Permission.RESOLVE, Action.RESOLVE, text)


@router.post("/alarms/{alarm_id}/out-of-service", response_model=AlarmDetail)
async def out_of_service(
    request: Request, caller: Caller, alarm_id: str, body: ReasonIn
) -> AlarmDetail:
    return await act(
        request, caller, alarm_id, Permission.SERVICE, Action.REMOVE_FROM_SERVICE, body.reason
    )


@router.post("/alarms/{alarm_id}/return-to-service", response_model=AlarmDetail)
async def return_to_service(
    request: Request, caller: Caller, alarm_id: str, body: OptionalReasonIn | None = None
) -> AlarmDetail:
    text = body.reason if body else None
    return await act(request, caller, alarm_id, Permission.SERVICE, Action.RETURN_TO_SERVICE, text)


@router.post("/alarms/{alarm_id}/comment", response_model=AlarmDetail)
async def comment(request: Request, caller: Caller, alarm_id: str, body: CommentIn) -> AlarmDetail:
    store = store_of(request)
    await alarm_for(store.engine, caller, alarm_id, Permission.COMMENT)
    await notes.comment(store, alarm_id, caller.actor, body.text)
    return await show(request, caller, alarm_id)


@router.post("/alarms/{alarm_id}/assign", response_model=AlarmDetail)
async def assign(request: Request, caller: Caller, alarm_id: str, body: AssignIn) -> AlarmDetail:
    store = store_of(request)
    await alarm_for(store.engine, caller, alarm_id, Permission.ASSIGN)
    await notes.assign(store, alarm_id, caller.actor, body.assignee)
    return await show(request, caller, alarm_id)
