"""Keeping third-party reconnect chatter to one line per distinct message.

aiokafka logs every failed connection attempt at ERROR and paho every loop turn without a
socket; during an outage that is several lines a second saying the same thing.
"""

from __future__ import annotations

import logging
import time

NOISY_LOGGERS = (
    "aiokafka",
    "aiokafka.conn",
    "aiokafka.cluster",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
    "aiokafka.producer.sender",
    "aiokafka.producer.producer",
    "paho.mqtt",
)


class RepeatFilter(logging.Filter):
    """Lets each distinct message of a logger through once per `window_s`."""

    def __init__(self, window_s: float = 600.0, max_keys: int = 1000) -> None:
        super().__init__()
        self.window_s = window_s
        self.max_keys = max_keys
        self._last: dict[tuple[str, int, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, record.getMessage()[:300])
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.window_s:
            return False
        if len(self._last) >= self.max_keys:
            self._last.clear()
        self._last[key] = now
        return True


def quiet_repeats(names: tuple[str, ...] = NOISY_LOGGERS) -> None:
    """Install a RepeatFilter on each logger once (calling this again changes nothing)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(RepeatFilter())
