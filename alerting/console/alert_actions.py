"""The alert page's forms: acknowledge, shelve, unshelve, resolve, comment, assign. Each calls
the API's own action (alerting/api/actions.py), so role, scope, lifecycle and trail are exactly
the API's; a refused step (409) or a bad field (422) comes back on the page with its reason."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from alerting.api import actions
from alerting.api.models import (
    AcknowledgeIn,
    AlarmDetail,
    AssignIn,
    CommentIn,
    OptionalReasonIn,
    ShelveIn,
)
from alerting.api.tokens import Principal
from alerting.console.alert_routes import alert_page
from alerting.console.guard import Viewer, form_of, refused

router = APIRouter(prefix="/console", include_in_schema=False)

Step = Callable[[Request, Principal, str, dict[str, str]], Awaitable[AlarmDetail]]


def _text(fields: dict[str, str], name: str) -> str | None:
    value = fields.get(name, "").strip()
    return value or None


async def _acknowledge(r: Request, v: Principal, a: str, f: dict[str, str]) -> AlarmDetail:
    return await actions.acknowledge(r, v, a, AcknowledgeIn(comment=_text(f, "comment")))


async def _shelve(r: Request, v: Principal, a: str, f: dict[str, str]) -> AlarmDetail:
    duration = f.get("duration", "")
    if duration == "one-shot":
        body = ShelveIn(reason=f.get("reason", "").strip(), one_shot=True)
    else:
        try:
            minutes = float(duration)
        except ValueError:
            raise HTTPException(422, "choose how long to shelve it") from None
        body = ShelveIn(reason=f.get("reason", "").strip(), duration_s=minutes * 60)
    return await actions.shelve(r, v, a, body)


async def _unshelve(r: Request, v: Principal, a: str, f: dict[str, str]) -> AlarmDetail:
    return await actions.unshelve(r, v, a, OptionalReasonIn(reason=_text(f, "reason")))


async def _resolve(r: Request, v: Principal, a: str, f: dict[str, str]) -> AlarmDetail:
    return await actions.resolve(r, v, a, AcknowledgeIn(comment=_text(f, "comment")))


async def _comment(r: Request, v: Principal, a: str, f: dict[str, str]) -> AlarmDetail:
    return await actions.comment(r, v, a, CommentIn(text=f.get("text", "").strip()))


async def _assign(r: Request, v: Principal, a: str, f: dict[str, str]) -> AlarmDetail:
    return await actions.assign(r, v, a, AssignIn(assignee=_text(f, "assignee")))


STEPS: dict[str, Step] = {
    "acknowledge": _acknowledge,
    "shelve": _shelve,
    "unshelve": _unshelve,
    "resolve": _resolve,
    "comment": _comment,
    "assign": _assign,
}


def _reason(exc: ValidationError) -> str:
    said = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors()
    )
    return f"Not done: {said}"


@router.post("/alerts/{alarm_id}/{step}", response_class=HTMLResponse)
async def act(request: Request, viewer: Viewer, alarm_id: str, step: str) -> Response:
    fields = await form_of(request)
    run = STEPS.get(step)
    if run is None:
        raise refused(HTTPException(404, f"no action {step!r}"))
    try:
        await run(request, viewer, alarm_id, fields)
    except ValidationError as exc:
        return await alert_page(request, viewer, alarm_id, error=_reason(exc), status=422)
    except HTTPException as exc:
        if exc.status_code in (409, 422):
            error = f"Not done: {exc.detail}"
            return await alert_page(request, viewer, alarm_id, error=error, status=exc.status_code)
        raise refused(exc) from None
    return RedirectResponse(f"/console/alerts/{quote(alarm_id, safe='')}#timeline", status_code=303)
