"""Structured logging: one JSON object per line for machines, or plain text for a terminal;
third-party reconnect chatter cut down to one line per distinct message and window."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

# aiokafka logs every failed connection attempt at ERROR, paho every loop turn without a socket,
# asyncua and pymodbus every reconnect: during an outage, several identical lines a second.
NOISY_LOGGERS = ("aiokafka", "paho", "asyncua", "pymodbus")

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        base = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.name}: "
        base += record.getMessage()
        if extra:
            base += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        if record.exc_info:
            base += "\n" + self.formatException(record.exc_info)
        return base


class RepeatFilter(logging.Filter):
    """Lets each distinct message of the loggers under `prefixes` (and their children) through
    once per `window_s`; every other logger passes untouched. Remembers at most `max_keys`
    messages, forgetting the least recently passed first."""

    def __init__(
        self,
        prefixes: tuple[str, ...] = NOISY_LOGGERS,
        window_s: float = 300.0,
        max_keys: int = 1000,
    ) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.window_s = window_s
        self.max_keys = max_keys
        self._children = tuple(f"{prefix}." for prefix in prefixes)
        self._last: dict[tuple[str, int, str], float] = {}

    def _applies(self, name: str) -> bool:
        return name in self.prefixes or name.startswith(self._children)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._applies(record.name):
            return True
        try:
            text = record.getMessage()
        except Exception:  # a library's bad format arguments: let logging report it
            return True
        key = (record.name, record.levelno, text[:300])
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.window_s:
            return False
        self._last.pop(key, None)  # re-inserted last: the dict stays ordered by last pass
        self._last[key] = now
        if len(self._last) > self.max_keys:
            del self._last[next(iter(self._last))]
        return True


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    """`fmt` is `json` (services under systemd or in containers) or `text` (a terminal)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    # On the handler, not the loggers: a logger's filter misses its children's records.
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Third-party libraries chatter at INFO about every reconnect and subscription.
    for noisy in ("asyncua", "aiokafka", "pymodbus", "kafka", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
