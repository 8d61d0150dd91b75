"""Typed failures of the edge agent and a logger that reports each distinct error once."""

from __future__ import annotations

import logging


class AgentError(Exception):
    """Base of the agent's own errors."""


class SourceError(AgentError):
    """A recoverable failure talking to a PLC: the source retries with backoff."""


class ModbusReadError(SourceError):
    """A Modbus request answered with an exception code or not answered at all."""


class BrowseError(SourceError):
    """An OPC UA browse root that does not exist on the server."""


class PublishError(AgentError):
    """A failure talking to the MQTT broker: the publisher reconnects with backoff."""


class ErrorOnce:
    """Logs each distinct error of one component once, counts all of them, and logs recovery.

    A PLC that is down fails every poll; one line says so, and one line says when it is back,
    instead of a line per poll."""

    def __init__(self, logger: logging.Logger, component: str) -> None:
        self._logger = logger
        self._component = component
        self._seen: set[str] = set()
        self.count = 0

    def report(self, what: str, error: BaseException | str) -> bool:
        """Count one failure; log it if it differs from those already logged. True if logged."""
        self.count += 1
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        key = f"{what}: {text}"
        if key in self._seen:
            return False
        self._seen.add(key)
        self._logger.warning("%s: %s", self._component, key)
        return True

    def recovered(self, what: str = "") -> None:
        """The component works again: log it once and forget the errors seen so far."""
        if self._seen:
            self._logger.info("%s: recovered%s", self._component, f" ({what})" if what else "")
            self._seen.clear()
