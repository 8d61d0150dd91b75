"""A raw MQTT 3.1.1 CONNECT/CONNACK exchange: the health check of the stack's Mosquitto, plain
or over TLS with a user and password (no MQTT library, so the stack needs none)."""

from __future__ import annotations

import os
import socket
import ssl
from pathlib import Path

from plantmesh.stack.paths import HOST

CONNACK_ACCEPTED = b"\x20\x02\x00\x00"


def _string(value: bytes) -> bytes:
    return len(value).to_bytes(2, "big") + value


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_packet(
    client_id: str, username: str | None = None, password: str | None = None
) -> bytes:
    flags = 0x02  # clean session
    payload = _string(client_id.encode())
    if username is not None:
        flags |= 0x80
        payload += _string(username.encode())
        if password is not None:
            flags |= 0x40
            payload += _string(password.encode())
    variable = b"\x00\x04MQTT\x04" + bytes([flags]) + b"\x00\x0a"  # level 4, keepalive 10 s
    body = variable + payload
    return b"\x10" + _remaining_length(len(body)) + body


def mqtt_handshake(
    port: int,
    host: str = HOST,
    timeout: float = 2.0,
    *,
    ca_file: Path | None = None,
    username: str | None = None,
    password: str | None = None,
) -> bool:
    """CONNECT answered by CONNACK "accepted": the broker really serves clients. With
    `ca_file`, over TLS, verifying the server's certificate against that CA and the host name."""
    packet = connect_packet(f"plantmesh-health-{os.getpid()}", username, password)
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            sock: socket.socket = raw
            if ca_file is not None:
                context = ssl.create_default_context(cafile=str(ca_file))
                sock = context.wrap_socket(raw, server_hostname=host)
            with sock:
                sock.sendall(packet)
                answer = b""
                while len(answer) < 4:
                    chunk = sock.recv(4 - len(answer))
                    if not chunk:
                        return False
                    answer += chunk
                accepted = answer == CONNACK_ACCEPTED
                if accepted:
                    sock.sendall(b"\xe0\x00")  # DISCONNECT, so the broker logs no error
                return accepted
    except OSError:  # ssl.SSLError (a failed verification too) is an OSError
        return False
