"""Free TCP ports on loopback, for servers a test starts (and for ports nobody listens on)."""

from __future__ import annotations

import socket

from plantmesh.stack.process import port_free


def free_port() -> int:
    """A port free on 127.0.0.1 right now: nothing listens there until the test starts it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(span: int) -> int:
    """A port p with p..p+span all free on loopback."""
    for _ in range(100):
        base = free_port()
        if base + span < 65536 and all(port_free(base + i) for i in range(span + 1)):
            return base
    raise AssertionError("no block of free ports found")
