"""Library messages the agent expects, demoted to debug on the loggers that emit them.

asyncua and pymodbus log their side of every PLC restart themselves: a 20-line "Publish
iteration crashed" traceback, warnings that the session being torn down is already closed, a
"Failed to connect" per retry, and at every connect a warning that the server granted another
session timeout than asked for. The sources log the restart once (`ConnectionLog`), so these
records go to debug, traceback kept for who turns debug on. Only the listed messages, and where
an exception rides along only when it is connection trouble: any other library warning or error
still shows. Nothing in the libraries is patched: a `logging.Filter` on each logger below.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.sources.connection_log import connection_trouble


def _always(_: logging.LogRecord) -> bool:
    return True


def _connection_trouble(record: logging.LogRecord) -> bool:
    """The record's exception is a lost connection (not a bug or a refusal)."""
    return record.exc_info is not None and connection_trouble(record.exc_info[1])


@dataclass(frozen=True)
class Expected:
    """Records of `logger` whose message template starts with `prefix` (and pass `when`)."""

    logger: str
    prefix: str
    when: Callable[[logging.LogRecord], bool] = _always


_CLIENT = "asyncua.client.client"
_SESSION = "asyncua.client.ua_session.UaSession"
_CHANNEL = "asyncua.client.ua_client.UaClient"
_SOCKET = "asyncua.client.ua_client.UASocketProtocol"
_PYMODBUS = "pymodbus.logging"  # pymodbus logs everything through this one logger
# What pymodbus logs, once, instead of a message identical to the one before.
PYMODBUS_REPEAT = "Repeating...."

EXPECTED: tuple[Expected, ...] = (
    # Servers cap the session timeout (asyncua asks for an hour): routine, at every connect.
    Expected(_CLIENT, "Requested session timeout to be"),
    # The publish loop of a session whose server went away; retried until torn down.
    Expected(_SESSION, "Publish iteration crashed", _connection_trouble),
    # Tearing down a session whose connection is already gone.
    Expected(_SESSION, "close_session was called but connection is closed"),
    Expected(_CHANNEL, "close_secure_channel was called but connection is closed"),
    Expected(_SOCKET, "disconnect_socket was called but transport is None"),
    Expected(_CLIENT, "close_session raised during disconnect", _connection_trouble),
    Expected(_CLIENT, "close_secure_channel raised during disconnect", _connection_trouble),
    # pymodbus: one of these per connect attempt or unanswered poll while the PLC is away.
    Expected(_PYMODBUS, "Failed to connect"),
    Expected(_PYMODBUS, "No response received after"),
    Expected(_PYMODBUS, "Not connected, trying to connect"),
    Expected(_PYMODBUS, "Cancel send, because not connected"),
)


class ExpectedNoiseFilter(logging.Filter):
    """Demotes the records of one logger that match one of `expected` to DEBUG, and drops them
    unless that logger has debug enabled (handlers do not check levels again). Others pass.

    A record whose message is `repeat` (a library's stand-in for "same as the last message")
    goes the way the record before it went."""

    def __init__(self, expected: tuple[Expected, ...], repeat: str | None = None) -> None:
        super().__init__()
        self.expected = expected
        self.repeat = repeat
        self._demoted_last = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:
            return True
        template = str(record.msg)
        if self.repeat is not None and template == self.repeat:
            demote = self._demoted_last
        else:
            demote = any(
                template.startswith(rule.prefix) and rule.when(record) for rule in self.expected
            )
            self._demoted_last = demote
        if not demote:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def quiet_expected_library_logs(expected: tuple[Expected, ...] = EXPECTED) -> None:
    """Attach one filter per logger named in `expected`, replacing any this installed before.

    On the loggers themselves, not on a handler: they are the exact loggers that emit these
    records, and a filter there works whatever handlers (or pytest's caplog) are attached."""
    by_logger: dict[str, list[Expected]] = {}
    for rule in expected:
        by_logger.setdefault(rule.logger, []).append(rule)
    for name, rules in by_logger.items():
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, ExpectedNoiseFilter)]:
            logger.removeFilter(old)
        repeat = PYMODBUS_REPEAT if name == _PYMODBUS else None
        logger.addFilter(ExpectedNoiseFilter(tuple(rules), repeat))
