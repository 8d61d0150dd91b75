"""Mosquitto from the Debian package, run with our own config (never the system service)."""

from __future__ import annotations

import os
import pwd
import re
import socket
import subprocess
from pathlib import Path

from plantmesh.stack.paths import HOST, MQTT_PORT_VAR
from plantmesh.stack.process import Identity
from plantmesh.stack.server import Server
from plantmesh.stack.system import Progress, Requirement, find_program

SYSTEM_BINARY = "/usr/sbin/mosquitto"


def render_config(port: int, data_dir: Path, log_path: Path, user: str) -> str:
    return f"""\
# Written by `plantmesh stack up` on every start: edits are overwritten.
listener {port} {HOST}
allow_anonymous true
# As root Mosquitto would switch to the "mosquitto" user, which cannot write our state dir.
user {user}

# Persistent sessions and their queued QoS 1 messages survive a broker restart.
persistence true
persistence_location {data_dir}/
autosave_interval 60

# The bridge's queued QoS 1 messages while it is down must not be dropped.
max_inflight_messages 1000
max_queued_messages 1000000

log_dest file {log_path}
log_type error
log_type warning
log_type notice
log_type information
log_timestamp_format %Y-%m-%dT%H:%M:%S
"""


def mqtt_handshake(port: int, host: str = HOST, timeout: float = 2.0) -> bool:
    """An MQTT 3.1.1 CONNECT answered by CONNACK "accepted": the broker really serves clients."""
    client_id = f"plantmesh-health-{os.getpid()}".encode()
    variable = b"\x00\x04MQTT\x04\x02\x00\x0a"  # protocol, level 4, clean session, keepalive 10 s
    payload = len(client_id).to_bytes(2, "big") + client_id
    body = variable + payload
    packet = b"\x10" + bytes([len(body)]) + body  # body < 128 bytes: one length byte
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(packet)
            answer = b""
            while len(answer) < 4:
                chunk = sock.recv(4 - len(answer))
                if not chunk:
                    return False
                answer += chunk
            accepted = answer == b"\x20\x02\x00\x00"
            if accepted:
                sock.sendall(b"\xe0\x00")  # DISCONNECT, so the broker logs no error
            return accepted
    except OSError:
        return False


class Mosquitto(Server):
    name = "mosquitto"
    port_var = MQTT_PORT_VAR
    env_var = "PLANTMESH_MQTT_URL"
    startup_timeout = 15.0
    stop_timeout = 10.0

    @property
    def binary(self) -> str:
        return find_program(SYSTEM_BINARY) or find_program("mosquitto") or SYSTEM_BINARY

    @property
    def config_path(self) -> Path:
        return self.dir / "mosquitto.conf"

    @property
    def port(self) -> int:
        return self.config.ports.mqtt

    @property
    def address(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    @property
    def identity(self) -> Identity:
        return Identity("mosquitto", str(self.config_path))

    def requirements(self) -> list[Requirement]:
        if find_program("mosquitto") is not None:
            return []
        return [Requirement(SYSTEM_BINARY, ("mosquitto", "mosquitto-clients"))]

    def prepare(self, progress: Progress) -> None:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        text = render_config(self.port, data, self.log_path, pwd.getpwuid(os.geteuid()).pw_name)
        self.config_path.write_text(text)

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.config_path)]

    def healthy(self) -> bool:
        return mqtt_handshake(self.port)

    def version(self) -> str | None:
        try:
            out = subprocess.run(
                [self.binary, "-h"], capture_output=True, text=True, timeout=5, check=False
            ).stdout
        except OSError:
            return None
        match = re.search(r"mosquitto version (\S+)", out)
        return match.group(1) if match else None
