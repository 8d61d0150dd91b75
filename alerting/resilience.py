"""Retrying without hammering and logging without flooding."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time


class Backoff:
    """Capped exponential backoff with jitter, so many restarting services do not retry in step."""

    def __init__(self, initial_s: float = 0.5, cap_s: float = 30.0, factor: float = 2.0) -> None:
        self.initial_s = initial_s
        self.cap_s = cap_s
        self.factor = factor
        self._next = initial_s

    def next_delay(self) -> float:
        base = self._next
        self._next = min(self.cap_s, self._next * self.factor)
        return random.uniform(base / 2, base)

    def reset(self) -> None:
        self._next = self.initial_s

    async def wait(self, stopping: asyncio.Event) -> bool:
        """Sleep the next delay; True when a stop was requested meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), self.next_delay())
        return stopping.is_set()


class LogOnce:
    """Logs each distinct problem once until it is cleared, not once per retry."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._seen: set[str] = set()

    def warning(self, key: str, message: str, *args: object) -> None:
        if key not in self._seen:
            self._seen.add(key)
            self._logger.warning(message, *args)

    def recovered(self, prefix: str, message: str, *args: object) -> None:
        """Forget the problems under `prefix` (they may be logged again) and say it is fixed."""
        cleared = {k for k in self._seen if k.startswith(prefix)}
        if cleared:
            self._seen -= cleared
            self._logger.info(message, *args)


class RepeatFilter(logging.Filter):
    """Passes a library's message once per `window_s` rather than on every reconnect attempt
    (aiokafka logs each failed connection at ERROR). Our own loggers pass untouched."""

    def __init__(self, prefixes: tuple[str, ...] = ("aiokafka",), window_s: float = 300.0) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.window_s = window_s
        self._last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, record.getMessage())
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.window_s:
            return False
        if len(self._last) > 1000:  # bounded memory whatever the library logs
            self._last.clear()
        self._last[key] = now
        return True
