"""Retrying without hammering and without flooding the log: capped jittered backoff, each
distinct error logged once per outage, and a stop signal that cuts any wait short.

Standard library only: every service imports it, the edge agent included.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DESCRIBE_MAX_CHARS = 300


class StopRequestedError(Exception):
    """The service was asked to stop while an operation was still being retried."""


class Backoff:
    """Delays for a retry loop: `next_delay()` before each new attempt, `reset()` once it worked.

    Steps grow by `factor` from `initial_s` and stop at `max_s`. Each delay is drawn from the
    upper `jitter` fraction of its step; the default 0.5 ("equal jitter") keeps it between half
    the step and the step, so services that lost the same server spread out, yet never retry in
    a hot loop."""

    def __init__(
        self,
        initial_s: float = 0.5,
        max_s: float = 30.0,
        *,
        factor: float = 2.0,
        jitter: float = 0.5,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < initial_s <= max_s:
            raise ValueError(f"need 0 < initial_s <= max_s, got {initial_s} and {max_s}")
        if factor < 1:
            raise ValueError(f"factor must be at least 1, got {factor}")
        if not 0 <= jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, got {jitter}")
        self.initial_s = initial_s
        self.max_s = max_s
        self.factor = factor
        self.jitter = jitter
        self._rng = rng
        self._step = initial_s

    def next_delay(self) -> float:
        step = self._step
        self._step = min(self.max_s, step * self.factor)  # capped, so it never overflows
        drawn: float = self._rng()
        return step * (1.0 - self.jitter * (1.0 - drawn))

    def reset(self) -> None:
        self._step = self.initial_s

    async def wait(self, stop: asyncio.Event) -> bool:
        """Sleep the next delay; True as soon as `stop` is set (then stop, do not retry)."""
        return await sleep_unless_stopped(stop, self.next_delay())


def describe(exc: BaseException) -> str:
    """`Type: message`, short enough for one log line; also what tells two errors apart."""
    name = type(exc).__name__
    text = str(exc) or repr(exc)
    return (text if text.startswith(name) else f"{name}: {text}")[:DESCRIBE_MAX_CHARS]


class ErrorLog:
    """Logs each distinct problem of one operation once until it works again, then logs the
    recovery once: a loop retrying every second writes a line per new error, not per attempt.

    `failed(exc)` is for retried errors; `once(key, message, ...)` for anything else worth one
    line per kind (a bad message, a failed commit). Remembers at most `max_distinct` keys."""

    def __init__(self, log: logging.Logger, what: str, *, max_distinct: int = 100) -> None:
        self._log = log
        self.what = what
        self.max_distinct = max_distinct
        self._seen: set[str] = set()
        self._full = False

    @property
    def failing(self) -> bool:
        return bool(self._seen)

    def failed(self, exc: BaseException, level: int = logging.WARNING) -> bool:
        """Log `exc` unless the same error was logged since the last success; True if logged."""
        key = describe(exc)
        return self.once(key, "%s failed, will retry: %s", self.what, key, level=level)

    def once(self, key: str, message: str, *args: object, level: int = logging.WARNING) -> bool:
        """Log `message` the first time `key` shows up since the last success; True if logged."""
        if key in self._seen:
            return False
        if len(self._seen) >= self.max_distinct:
            if not self._full:
                self._full = True
                self._log.log(
                    level,
                    "%s: more than %d distinct errors; new ones are not logged until it works",
                    self.what,
                    self.max_distinct,
                )
            return False
        self._seen.add(key)
        self._log.log(level, message, *args)
        return True

    def succeeded(self) -> None:
        if self._seen:
            self._log.info("%s recovered", self.what)
            self._seen.clear()
            self._full = False


def raise_if_cancelled() -> None:
    """Raise the cancellation a library swallowed. On Python 3.11, `asyncio.wait_for` (which
    pymodbus and asyncua use for their timeouts) returns normally when the cancellation meets
    the awaited call's completion; the request still shows in `Task.cancelling()`. Loops that
    run library calls check this once a round, so a cancelled task ends instead of going on."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def sleep_unless_stopped(stop: asyncio.Event, delay: float) -> bool:
    """Sleep `delay` seconds; True as soon as `stop` is set."""
    if stop.is_set():
        return True
    try:
        async with asyncio.timeout(delay):  # not wait_for: on 3.11 it can lose a cancellation
            await stop.wait()
    except TimeoutError:
        return False
    return True


async def retry_until_stopped(
    operation: Callable[[], Awaitable[T]],
    *,
    stop: asyncio.Event,
    backoff: Backoff,
    errors: ErrorLog,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    on_retry: Callable[[], None] | None = None,
) -> T:
    """Run `operation` until it succeeds; raise StopRequestedError if `stop` is set first.

    Errors outside `retry_on` propagate at once. No attempt starts once `stop` is set."""
    while True:
        if stop.is_set():
            raise StopRequestedError(errors.what)
        try:
            result = await operation()
        except retry_on as exc:
            errors.failed(exc)
            if on_retry is not None:
                on_retry()
            if await backoff.wait(stop):
                raise StopRequestedError(errors.what) from None
            continue
        errors.succeeded()
        backoff.reset()
        return result
