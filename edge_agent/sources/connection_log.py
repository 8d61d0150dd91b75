"""What a source logs about its PLC connection: one warning when it is lost, one line when it
is back, whatever the reconnect loop goes through in between.

A PLC restart is routine on a plant floor. Each failed attempt while the PLC is away (refused,
timed out, closed) is the same news again, so it goes to debug, traceback included; an error of
another kind during the outage (say, the restarted PLC now refuses our credentials) is news and
is logged once as a warning.
"""

from __future__ import annotations

import logging
import sys
import time
from functools import cache

from plantmesh.resilience import describe

# OPC UA status codes that mean the server or the link to it is gone, not that it refused us.
UA_CONNECTION_CODES = frozenset(
    {
        "BadCommunicationError",
        "BadConnectionClosed",
        "BadConnectionRejected",
        "BadNoCommunication",
        "BadNotConnected",
        "BadSecureChannelClosed",
        "BadSecureChannelIdInvalid",
        "BadServerHalted",
        "BadServerNotConnected",
        "BadSessionClosed",
        "BadSessionIdInvalid",
        "BadShutdown",
        "BadTcpServerTooBusy",
        "BadTimeout",
    }
)
# Distinct unexpected errors remembered per outage; past that they go to debug.
MAX_DISTINCT = 100


def connection_trouble(error: BaseException | None) -> bool:
    """True for what a PLC that restarts or drops off the network makes a client raise: socket
    errors, timeouts, pymodbus' connection and no-answer errors, OPC UA connection status codes.
    False for everything else (a refused login, a bad certificate, a garbled answer, a bug).

    The protocol libraries are looked up among the loaded modules, not imported: an error of a
    library nobody loaded cannot exist, and importing asyncua costs a Modbus-only gateway about
    30 MB."""
    ua_errors = sys.modules.get("asyncua.ua.uaerrors")
    if ua_errors is not None and isinstance(error, ua_errors.UaStatusCodeError):
        return error.code in _ua_connection_codes()
    if isinstance(error, OSError | TimeoutError | EOFError):
        return True
    modbus = sys.modules.get("pymodbus.exceptions")
    return modbus is not None and isinstance(
        error, modbus.ConnectionException | modbus.ModbusIOException
    )


@cache
def _ua_connection_codes() -> frozenset[int]:
    from asyncua.ua.status_codes import StatusCodes

    return frozenset(getattr(StatusCodes, name) for name in UA_CONNECTION_CODES)


class ConnectionLog:
    """The connection state of one source, as its log tells it.

    `failed(error, member)` when an attempt or a session fails, `connected(member)` when data
    flows. The source is down while any member (a Modbus device: each has its own connection)
    is down; it logs `<what> lost: <reason>` at the first failure and `<what> recovered after
    N s` once every member is back. Cheap enough to call after every successful poll."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self._log = log
        self.what = what
        self._down: set[str] = set()
        self._ever_up: set[str] = set()
        self._since: float | None = None
        self._was_up = False
        """Whether the current outage began by losing a member that had worked."""
        self._logged: set[str] = set()

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(
        self,
        error: BaseException | str,
        member: str = "",
        *,
        step: str = "",
        expected: bool | None = None,
    ) -> bool:
        """Note a failed attempt (at `step`, say `connect`) or a lost session; True if it was
        logged at warning level. `expected` says whether `error` is routine connection trouble;
        by default `connection_trouble(error)` decides (a text counts as expected)."""
        reason = error if isinstance(error, str) else describe(error)
        reason = ": ".join(part for part in (member, step, reason) if part)
        if expected is None:
            expected = isinstance(error, str) or connection_trouble(error)
        exc_info = error if isinstance(error, BaseException) else None
        self._down.add(member)
        if self._since is None:
            self._since = time.monotonic()
            self._logged = {reason}
            self._was_up = member in self._ever_up
            gone = "lost" if self._was_up else "unreachable"
            self._log.warning("%s %s: %s", self.what, gone, reason)
            self._traceback(exc_info)
            return True
        if expected or reason in self._logged or len(self._logged) >= MAX_DISTINCT:
            self._log.debug("%s still down: %s", self.what, reason, exc_info=exc_info)
            return False
        self._logged.add(reason)
        self._log.warning("%s still down: %s", self.what, reason)
        self._traceback(exc_info)
        return True

    def _traceback(self, error: BaseException | None) -> None:
        if error is not None and error.__traceback__ is not None:
            self._log.debug("%s: traceback of %s", self.what, describe(error), exc_info=error)

    def connected(self, member: str = "", detail: str = "") -> bool:
        """Note that `member` works; True if that ended an outage (and was logged)."""
        self._ever_up.add(member)
        if self._since is None:
            return False
        self._down.discard(member)
        if self._down:
            return False
        seconds = time.monotonic() - self._since
        self._since = None
        self._logged = set()
        back = "recovered" if self._was_up else "connected"
        suffix = f" ({detail})" if detail else ""
        self._log.info("%s %s after %.1f s%s", self.what, back, seconds, suffix)
        return True
