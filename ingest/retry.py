"""Retrying without hammering and without flooding the log: capped jittered backoff, each
distinct error logged once per outage, and a stop signal that cuts any wait short."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class StopRequestedError(Exception):
    """The service was asked to stop while an operation was still being retried."""


class Backoff:
    """Exponential backoff capped at `max_s`, with "equal jitter": the delay is drawn from the
    upper half of the current step, so retries spread out yet never become a hot loop."""

    def __init__(
        self, initial_s: float, max_s: float, rng: Callable[[], float] = random.random
    ) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self._rng = rng
        self.attempt = 0

    def next_delay(self) -> float:
        step = min(self.max_s, self.initial_s * 2.0 ** min(self.attempt, 32))
        self.attempt += 1
        jitter: float = self._rng()
        return step / 2 + jitter * step / 2

    def reset(self) -> None:
        self.attempt = 0


def describe(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc) or repr(exc)
    return (text if text.startswith(name) else f"{name}: {text}")[:300]


class ErrorLog:
    """Logs each distinct error once until the operation succeeds again, then logs recovery."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self._log = log
        self.what = what
        self._seen: set[str] = set()

    @property
    def failing(self) -> bool:
        return bool(self._seen)

    def failed(self, exc: BaseException, level: int = logging.WARNING) -> None:
        key = describe(exc)
        if key not in self._seen:
            self._seen.add(key)
            self._log.log(level, "%s failed, will retry: %s", self.what, key)

    def succeeded(self) -> None:
        if self._seen:
            self._log.info("%s recovered", self.what)
            self._seen.clear()


async def sleep_unless_stopped(stop: asyncio.Event, delay: float) -> bool:
    """Sleep `delay` seconds; True as soon as `stop` is set."""
    if stop.is_set():
        return True
    try:
        await asyncio.wait_for(stop.wait(), delay)
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
    """Run `operation` until it succeeds; raise StopRequestedError if `stop` is set first."""
    while True:
        if stop.is_set():
            raise StopRequestedError(errors.what)
        try:
            result = await operation()
        except retry_on as exc:
            errors.failed(exc)
            if on_retry is not None:
                on_retry()
            if await sleep_unless_stopped(stop, backoff.next_delay()):
                raise StopRequestedError(errors.what) from None
            continue
        errors.succeeded()
        backoff.reset()
        return result
