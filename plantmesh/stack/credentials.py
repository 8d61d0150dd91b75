"""Who may use the local stack's TLS MQTT listener, and for what: the gateways' and the bridge's
passwords, Mosquitto's password file and its ACL, all kept in the Mosquitto state dir.

Each user's clear password lives in `credentials/<user>.password` (mode 600): that file is what
an agent's or the bridge's `mqtt.password_file` points at. Mosquitto gets only the hashes.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path

from plantmesh.stack.errors import StackError
from plantmesh.stack.system import file_lock, write_private
from plantmesh.topics import GATEWAY_LEVEL, READINGS_LEAF, STATUS_LEAF, Topics

BRIDGE_USER = "bridge"
ADMIN_USER = "admin"
"""The operator: may read and write every topic (`plantmesh stack env` exports it, so tests,
tools and a debugging `mosquitto_sub` reach the secured broker). Never give it to a gateway."""
RESERVED_USERS = frozenset({BRIDGE_USER, ADMIN_USER})
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""The contracts' Name: no `/`, `+`, `#`, `:` or blanks, so it is safe in topics, the password
file and the ACL file alike."""
NAMESPACE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]{0,62})?$")
PASSWORD_BYTES = 24
MAX_PASSWORD = 256


class CredentialError(StackError):
    """A gateway or password the store cannot take."""


@dataclass(frozen=True)
class Gateway:
    name: str
    plant: str
    namespace: str = ""

    def __post_init__(self) -> None:
        for what, value in (("gateway name", self.name), ("plant", self.plant)):
            if not NAME.match(value):
                raise CredentialError(
                    f"{what} {value!r} must match {NAME.pattern} (letters, digits, . _ -)"
                )
        if not NAMESPACE.match(self.namespace):
            raise CredentialError(f"namespace {self.namespace!r} must match {NAMESPACE.pattern}")
        if self.name in RESERVED_USERS:
            raise CredentialError(f"{self.name!r} is reserved for the stack's own user")


def check_password(password: str) -> str:
    if not password or len(password) > MAX_PASSWORD or any(c in password for c in "\r\n\0"):
        raise CredentialError(
            f"a password must be 1..{MAX_PASSWORD} characters on one line (no NUL)"
        )
    return password


def read_password_file(path: Path) -> str:
    """A password given in a file: its first line, without the line break."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CredentialError(f"cannot read the password file {path}: {exc}") from None
    return check_password(text.split("\n", 1)[0].rstrip("\r"))


def _acl_block(user: str, rules: Iterable[str]) -> list[str]:
    return [f"user {user}", *rules, ""]


def render_acl(gateways: Iterable[Gateway]) -> str:
    """Mosquitto's acl_file. A user without a block may do nothing; there are no `pattern`
    lines (they would apply to every user).

    A gateway may publish its readings under its own plant only, and its status under its own
    status topic only. Readings topics carry plant/area/line/machine but no gateway id, so two
    gateways of one plant can publish for each other's machines: the ACL cannot be tighter than
    the plant for readings. It subscribes to nothing, so it gets no read rule.

    The bridge may only read readings and status topics, in every namespace (a namespace is one
    topic level in front of the root; `topic read` also covers `$share/<group>/...`)."""
    bridge_rules = []
    for topics in (Topics(), Topics("+")):
        bridge_rules += [
            f"topic read {topics.mqtt_readings_filter}",
            f"topic read {topics.mqtt_status_filter}",
        ]
    lines = [
        "# Written by plantmesh (`plantmesh stack up`, `plantmesh gateway add/remove`):",
        "# edits are overwritten. Users without a block here may do nothing.",
        "",
        *_acl_block(BRIDGE_USER, bridge_rules),
        *_acl_block(ADMIN_USER, ["topic readwrite #"]),
    ]
    for gw in sorted(gateways, key=lambda g: g.name):
        root = Topics(gw.namespace).mqtt_root
        lines += _acl_block(
            gw.name,
            [
                f"topic write {root}/{gw.plant}/+/+/+/{READINGS_LEAF}",
                f"topic write {root}/{gw.plant}/{GATEWAY_LEVEL}/{gw.name}/{STATUS_LEAF}",
            ],
        )
    return "\n".join(lines)


class CredentialStore:
    def __init__(self, directory: Path) -> None:
        self.dir = directory

    @property
    def registry_path(self) -> Path:
        return self.dir / "gateways.json"

    @property
    def passwd_path(self) -> Path:
        return self.dir / "passwd"

    @property
    def acl_path(self) -> Path:
        return self.dir / "acl"

    def password_file(self, user: str) -> Path:
        return self.dir / "credentials" / f"{user}.password"

    def lock(self) -> AbstractContextManager[None]:
        """Held while changing the store: two `gateway add`s, or one and `stack up`, take turns."""
        return file_lock(self.dir / "credentials.lock")

    # --- the registry ------------------------------------------------------------------------
    def gateways(self) -> list[Gateway]:
        try:
            raw = json.loads(self.registry_path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise CredentialError(f"cannot read {self.registry_path}: {exc}") from None
        return [Gateway(**entry) for entry in raw.get("gateways", [])]

    def _save(self, gateways: list[Gateway]) -> None:
        data = {"gateways": [asdict(g) for g in sorted(gateways, key=lambda g: g.name)]}
        self.registry_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.registry_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(self.registry_path)

    # --- passwords ---------------------------------------------------------------------------
    def ensure_password(self, user: str, password: str | None = None) -> Path:
        """The user's password file: `password` when given, else kept, else a random one."""
        path = self.password_file(user)
        if password is not None:
            write_private(path, check_password(password).encode() + b"\n")
        elif not path.exists():
            write_private(path, secrets.token_urlsafe(PASSWORD_BYTES).encode() + b"\n")
        return path

    def password(self, user: str) -> str:
        return read_password_file(self.password_file(user))

    def add_gateway(self, gateway: Gateway, password: str | None = None) -> Path:
        """Register a gateway (its password: given, or random); returns its password file.
        The broker files must be rewritten (`write_broker_files`) for it to take effect."""
        current = self.gateways()
        if any(g.name == gateway.name for g in current):
            raise CredentialError(f"gateway {gateway.name!r} exists already: remove it first")
        self.password_file(gateway.name).unlink(missing_ok=True)  # a removed one's leftover
        path = self.ensure_password(gateway.name, password)
        self._save([*current, gateway])
        return path

    def remove_gateway(self, name: str) -> Gateway:
        current = self.gateways()
        found = [g for g in current if g.name == name]
        if not found:
            raise CredentialError(f"no gateway {name!r}")
        self._save([g for g in current if g.name != name])
        self.password_file(name).unlink(missing_ok=True)
        return found[0]

    # --- what Mosquitto reads ------------------------------------------------------------------
    def write_broker_files(self, passwd_tool: str) -> None:
        """The bridge's password (made once), Mosquitto's password file and ACL, from the
        registry. Hashes come from mosquitto_passwd, fed on stdin: a password never appears on
        a command line."""
        self.ensure_password(BRIDGE_USER)
        self.ensure_password(ADMIN_USER)
        users = [BRIDGE_USER, ADMIN_USER, *(g.name for g in self.gateways())]
        tmp = self.passwd_path.with_name("passwd.new")
        write_private(tmp, b"")
        for user in users:
            secret = self.password(user)
            try:
                result = subprocess.run(
                    [passwd_tool, str(tmp), user],
                    input=f"{secret}\n{secret}\n",
                    capture_output=True,
                    text=True,
                    timeout=30,
                    check=False,
                )
            except OSError as exc:
                raise CredentialError(f"cannot run {passwd_tool}: {exc}") from None
            if result.returncode != 0:
                raise CredentialError(
                    f"{passwd_tool} failed for user {user!r}: {result.stderr.strip()}"
                )
        tmp.chmod(0o600)
        tmp.replace(self.passwd_path)
        write_private(self.acl_path, render_acl(self.gateways()).encode())
