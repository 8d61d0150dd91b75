"""The live board: a Server-Sent Events stream of the viewer's board, sent again whenever the
newest trail entry changes (any process's transition or action writes one) and once a minute
so ages stay current. One cheap query a second per open board; the stream ends after a while
(the browser reconnects by itself) and when the token is revoked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from time import monotonic

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from alerting.api.auth import store_of
from alerting.api.tokens import Principal
from alerting.console.board import board_rows, group, newest_change
from alerting.console.guard import viewer_of
from alerting.console.pages import fragment

router = APIRouter(prefix="/console", include_in_schema=False)

POLL_S = 1.0
REFRESH_S = 60.0
"""Sent again at least this often, so the ages on the board move."""
RECHECK_S = 30.0
"""How often the session's token is looked up again (revoked: the stream ends)."""
LIFETIME_S = 600.0


def message(event: str, data: dict[str, object]) -> str:
    """One SSE message; JSON has no raw newlines, so one `data:` line carries it."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def board_message(request: Request, viewer: Principal, version: int) -> str:
    store = store_of(request)
    now = store.clock()
    plants = group(await board_rows(store.engine, viewer, now), now)
    html = fragment("_board.html", plants=plants)
    total = sum(p.count for p in plants)
    return message("board", {"version": version, "total": total, "html": html})


async def _stream(request: Request, viewer: Principal, seen: int) -> AsyncIterator[str]:
    engine = store_of(request).engine
    poll_s = float(getattr(request.app.state, "console_poll_s", POLL_S))
    started = sent = checked = monotonic()
    yield "retry: 2000\n\n"
    while monotonic() - started < LIFETIME_S:
        version = await newest_change(engine)
        now = monotonic()
        if version != seen or now - sent >= REFRESH_S:
            seen, sent = version, now
            yield await board_message(request, viewer, version)
        if now - checked >= RECHECK_S:
            checked = now
            if await viewer_of(request) is None:
                yield message("logout", {})
                return
        await asyncio.sleep(poll_s)


@router.get("/events")
async def events(request: Request, since: int = -1) -> Response:
    viewer = await viewer_of(request)
    if viewer is None:
        return Response(status_code=204)  # EventSource stops reconnecting on 204
    return StreamingResponse(
        _stream(request, viewer, since),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
