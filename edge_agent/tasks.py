"""Stopping tasks for good."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)
_RECANCEL_AFTER_S = 1.0


async def cancel_and_wait(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel and wait, cancelling again what is still running after a while: on Python 3.11,
    asyncio.wait_for (which pymodbus and asyncua use for their timeouts) drops a cancellation
    that arrives just as the awaited call completes, and the task carries on."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_RECANCEL_AFTER_S)
        if pending:
            log.warning("%d task(s) ignored a cancellation; cancelling again", len(pending))
    await asyncio.gather(*tasks, return_exceptions=True)  # retrieve their outcomes
