"""Waiting on a condition with a deadline: the only way tests synchronise with real servers."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# Deadlines only bound how long a failing test takes: a condition that holds returns at once.
# The test command stretches them (PLANTMESH_TEST_TIMEOUT_SCALE) so a loaded CI machine is not
# mistaken for a bug.
SCALE = float(os.environ.get("PLANTMESH_TEST_TIMEOUT_SCALE", "1"))


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout` s."""
    timeout *= SCALE
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


async def now(value: T) -> T:
    """A condition computed already, as async_wait_for's predicate: `lambda: now(x == y)`."""
    return value


async def async_wait_for(
    predicate: Callable[[], Awaitable[T]], timeout: float, what: str, interval: float = 0.05
) -> T:
    """The asyncio twin of wait_for: the predicate is a coroutine function."""
    timeout *= SCALE
    deadline = time.monotonic() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)
