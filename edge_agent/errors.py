"""Typed failures of the edge agent, and how they are logged: each distinct one once."""

from __future__ import annotations

from plantmesh.resilience import ErrorLog, describe


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


def report(errors: ErrorLog, what: str, error: BaseException | str) -> bool:
    """Log `<component>: <what>: <error>` unless that line was logged since the component last
    recovered (`errors.succeeded()`); True if logged. A PLC that is down fails every poll: one
    line says so, and one line says when it is back, instead of a line per poll."""
    key = f"{what}: {error if isinstance(error, str) else describe(error)}"
    return errors.once(key, "%s: %s", errors.what, key)
