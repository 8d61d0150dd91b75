"""Mosquitto from the Debian package, run with our own config (never the system service)."""

from __future__ import annotations

import os
import pwd
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from plantmesh.stack.credentials import ADMIN_USER, CredentialStore
from plantmesh.stack.errors import StackError
from plantmesh.stack.mqtt_probe import mqtt_handshake
from plantmesh.stack.paths import HOST, MQTT_PORT_VAR
from plantmesh.stack.process import Identity, send_signal
from plantmesh.stack.server import Server
from plantmesh.stack.system import Progress, Requirement, find_program

SYSTEM_BINARY = "/usr/sbin/mosquitto"
PASSWD_BINARY = "/usr/bin/mosquitto_passwd"
MQTTS_URL_VAR = "PLANTMESH_MQTTS_URL"
CA_FILE_VAR = "PLANTMESH_MQTT_CA_FILE"
USERNAME_VAR = "PLANTMESH_MQTT_USERNAME"
PASSWORD_FILE_VAR = "PLANTMESH_MQTT_PASSWORD_FILE"
GATEWAYS_FILE_VAR = "PLANTMESH_MQTT_GATEWAYS_FILE"
TLS_MARKER = "# TLS listener: users from password_file only, limited by acl_file."


@dataclass(frozen=True)
class TlsListener:
    """The second listener: TLS, known users only, each limited by the ACL."""

    port: int
    ca_file: Path
    cert_file: Path
    key_file: Path
    password_file: Path
    acl_file: Path


def render_config(
    port: int, data_dir: Path, log_path: Path, user: str, tls: TlsListener | None = None
) -> str:
    """One listener: TLS with known users limited by the ACL (`tls`), or, for `--insecure`
    only, plain and anonymous on `port`."""
    if tls is None:
        listener = f"""\
# --insecure: anyone may connect and publish anything. For debugging only.
listener {port} {HOST}
allow_anonymous true
"""
    else:
        listener = f"""\
{TLS_MARKER}
listener {tls.port} {HOST}
cafile {tls.ca_file}
certfile {tls.cert_file}
keyfile {tls.key_file}
allow_anonymous false
password_file {tls.password_file}
acl_file {tls.acl_file}
"""
    return f"""\
# Written by `plantmesh stack up` on every start: edits are overwritten.
{listener}
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
    def passwd_tool(self) -> str:
        return find_program(PASSWD_BINARY) or find_program("mosquitto_passwd") or PASSWD_BINARY

    @property
    def config_path(self) -> Path:
        return self.dir / "mosquitto.conf"

    @property
    def security_dir(self) -> Path:
        return self.dir / "security"

    @property
    def credentials(self) -> CredentialStore:
        return CredentialStore(self.security_dir)

    @property
    def ca_file(self) -> Path:
        return self.security_dir / "tls" / "ca.pem"

    @property
    def port(self) -> int:
        return self.config.ports.mqtt

    @property
    def tls_port(self) -> int:
        return self.config.ports.mqtt_tls

    @property
    def secure(self) -> bool:
        return not self.config.insecure

    @property
    def ports(self) -> list[int]:
        return [self.tls_port] if self.secure else [self.port]

    @property
    def address(self) -> str:
        return self.tls_address if self.secure else f"mqtt://{HOST}:{self.port}"

    @property
    def tls_address(self) -> str:
        return f"mqtts://{HOST}:{self.tls_port}"

    def extra_env(self) -> dict[str, str]:
        """The operator's user (`admin`: every topic) and the CA, for tests and tools."""
        if not self.secure:
            return {}
        return {
            MQTTS_URL_VAR: self.tls_address,
            CA_FILE_VAR: str(self.ca_file),
            USERNAME_VAR: ADMIN_USER,
            PASSWORD_FILE_VAR: str(self.credentials.password_file(ADMIN_USER)),
            GATEWAYS_FILE_VAR: str(self.credentials.registry_path),
        }

    def connection(self, user: str = ADMIN_USER) -> dict[str, str]:
        """An `mqtt:` config section that reaches this broker as `user` (default: the
        operator); for tests and tools that run a stack of their own."""
        if not self.secure:
            return {"url": self.address}
        return {
            "url": self.address,
            "username": user,
            "password_file": str(self.credentials.password_file(user)),
            "ca_file": str(self.ca_file),
        }

    @property
    def identity(self) -> Identity:
        return Identity("mosquitto", str(self.config_path))

    def requirements(self) -> list[Requirement]:
        if find_program("mosquitto") is not None and find_program("mosquitto_passwd") is not None:
            return []
        return [Requirement(SYSTEM_BINARY, ("mosquitto", "mosquitto-clients"))]

    def prepare(self, progress: Progress) -> None:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        user = pwd.getpwuid(os.geteuid()).pw_name
        listener = self._secure_listener() if self.secure else None
        self.config_path.write_text(render_config(self.port, data, self.log_path, user, listener))
        if listener is None:
            progress(self.name, f"--insecure: plain, anonymous listener {self.address}")
        else:
            progress(self.name, f"TLS listener {self.tls_address} (CA {listener.ca_file})")

    def _secure_listener(self) -> TlsListener:
        try:  # cryptography is needed only when starting the broker
            from plantmesh.stack.tls import ensure_certificates
        except ImportError as exc:
            raise StackError(f"{exc}: install it with pip install 'plantmesh[stack]'") from None
        store = self.credentials
        with store.lock():
            tls = ensure_certificates(self.ca_file.parent)
            store.write_broker_files(self.passwd_tool)
        return TlsListener(
            port=self.tls_port,
            ca_file=tls.ca_cert,
            cert_file=tls.server_cert,
            key_file=tls.server_key,
            password_file=store.passwd_path,
            acl_file=store.acl_path,
        )

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.config_path)]

    def serves_tls(self) -> bool:
        """Was the running broker started with the TLS listener (not `--insecure`)?"""
        try:
            return TLS_MARKER in self.config_path.read_text()
        except OSError:
            return False

    def tls_healthy(self) -> bool:
        """A TLS CONNECT as the operator, verifying the server against the stack's CA."""
        try:
            password = self.credentials.password(ADMIN_USER)
        except StackError:
            return False
        return mqtt_handshake(
            self.tls_port, ca_file=self.ca_file, username=ADMIN_USER, password=password
        )

    def healthy(self) -> bool:
        return self.tls_healthy() if self.serves_tls() else mqtt_handshake(self.port)

    def reload(self) -> int | None:
        """SIGHUP: the running broker rereads its password file and ACL. Its pid, or None when
        it is not running."""
        pid = self.running_pid()
        if pid is not None and send_signal(pid, self.identity, signal.SIGHUP):
            return pid
        return None

    def version(self) -> str | None:
        try:
            out = subprocess.run(
                [self.binary, "-h"], capture_output=True, text=True, timeout=5, check=False
            ).stdout
        except OSError:
            return None
        match = re.search(r"mosquitto version (\S+)", out)
        return match.group(1) if match else None
