"""systemd's notify protocol with the standard library: READY=1, WATCHDOG=1, STOPPING=1.

The protocol is one datagram per message to the AF_UNIX socket named in $NOTIFY_SOCKET (a name
starting with `@` is in the abstract namespace). Outside systemd the variable is unset and every
call does nothing, so the agent runs the same in a terminal, a container or a test.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval_s = _watchdog_interval(env)
        self._failed = False

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, message: str) -> bool:
        """Send one message (e.g. "READY=1"); False when not under systemd or it failed (logged
        once, never raised: the agent must not stop because its supervisor is unreachable)."""
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self.address)
                sock.sendall(message.encode())
        except OSError as exc:
            if not self._failed:
                self._failed = True
                log.warning("sd_notify to %s failed: %s", self.address, exc)
            return False
        return True


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """How often to ping: half of WatchdogSec (from $WATCHDOG_USEC), if the watchdog is meant for
    this process ($WATCHDOG_PID unset or ours)."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000 / 2
