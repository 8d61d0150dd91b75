"""Who may use the local stack's InfluxDB, and for what.

Each user's token (`user:password`, what influxdb-client and `InfluxConnection.token_file` take
for InfluxDB 1.8) lives in `<state>/influxdb/security/credentials/<user>.token`, mode 600, made
once and kept across restarts. InfluxDB keeps only bcrypt hashes, in its meta store.

- admin: all privileges; the operator (`plantmesh stack`, the test suite, which creates
  databases). `plantmesh stack env` exports its file as PLANTMESH_INFLUX_TOKEN_FILE.
- writer: WRITE on the plantmesh database (the ingest writer).
- reader: READ on it (queries, dashboards, `plantmesh query`).
- alarms: READ and WRITE on it (the alarm service writes `alarm_state` and reads series for
  the console, backtests and completeness).

Statements carrying a password travel in a POST body, never in a URL (InfluxDB's access log and
any proxy log URLs); InfluxDB itself prints such statements with the password [REDACTED].
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from plantmesh.influxql import auth_headers, read_token_file
from plantmesh.stack.errors import StackError
from plantmesh.stack.paths import StackConfig
from plantmesh.stack.server import http
from plantmesh.stack.system import file_lock, write_private

ADMIN = "admin"
WRITER = "writer"
READER = "reader"
ALARMS = "alarms"
PASSWORD_BYTES = 24
NO_USERS = "create admin user first"
"""What InfluxDB 1.8 answers (403) while it has no user at all: only CREATE USER ... WITH ALL
PRIVILEGES is allowed then, without credentials."""


@dataclass(frozen=True)
class InfluxUser:
    name: str
    privilege: str | None
    """READ, WRITE or ALL on the stack's database; None: an admin (ALL PRIVILEGES)."""


USERS = (
    InfluxUser(ADMIN, None),
    InfluxUser(WRITER, "WRITE"),
    InfluxUser(READER, "READ"),
    InfluxUser(ALARMS, "ALL"),
)


def security_dir(config: StackConfig) -> Path:
    return config.server_dir("influxdb") / "security"


def token_path(directory: Path, user: str) -> Path:
    return directory / "credentials" / f"{user}.token"


def token_file(user: str, config: StackConfig | None = None) -> Path | None:
    """A user's token file in this stack (admin, writer, reader, alarms), for a client's
    `token_file`; None when the stack runs without authentication (`up --insecure`). The file
    exists once `plantmesh stack up` has started InfluxDB in the secured mode."""
    if user not in {u.name for u in USERS}:
        raise StackError(
            f"no InfluxDB user {user!r}: expected one of admin, writer, reader, alarms"
        )
    cfg = config or StackConfig.from_env()
    return None if cfg.insecure else token_path(security_dir(cfg), user)


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def influxql(url: str, statement: str, token: str = "", timeout: float = 10.0) -> tuple[int, str]:
    """POST one statement to /query (in the body, so a password in it stays out of every log);
    the HTTP status and the first error InfluxDB reported ("" for none). StackError when
    InfluxDB cannot be reached."""
    request = urllib.request.Request(
        f"{url}/query",
        data=urllib.parse.urlencode({"q": statement}).encode(),
        method="POST",
        headers=auth_headers(token),
    )
    try:
        with http.open(request, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (OSError, urllib.error.URLError) as exc:
        raise StackError(f"InfluxDB {url} did not answer: {exc}") from exc
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return status, body.decode(errors="replace")[:300] or f"HTTP {status}"
    error = answer.get("error") if isinstance(answer, dict) else None
    results = answer.get("results") if isinstance(answer, dict) else None
    for result in results if isinstance(results, list) else []:
        if isinstance(result, dict) and result.get("error"):
            error = error or result["error"]
    return status, str(error or "")


def _run(url: str, statement: str, token: str, what: str) -> None:
    status, error = influxql(url, statement, token)
    if status != 200 or error:
        raise StackError(f"InfluxDB {url}: {what} failed (HTTP {status}): {error}")


class InfluxSecurity:
    """The users of one InfluxDB and their token files."""

    def __init__(self, directory: Path, url: str) -> None:
        self.dir = directory
        self.url = url

    def path(self, user: str) -> Path:
        return token_path(self.dir, user)

    def password(self, user: str) -> str:
        """The user's password from its token file (which must name that user)."""
        path = self.path(user)
        try:
            name, sep, password = read_token_file(path).partition(":")
        except ValueError as exc:
            raise StackError(str(exc)) from None
        if not sep or name != user or not password:
            raise StackError(f"{path} must hold one line `{user}:<password>`")
        return password

    def _ensure_file(self, user: str) -> str:
        """The user's password: kept from its file, or a new random one written there."""
        path = self.path(user)
        if not path.exists():
            secret = secrets.token_urlsafe(PASSWORD_BYTES)
            write_private(path, f"{user}:{secret}\n".encode())
        return self.password(user)

    def admin_token(self) -> str:
        """Admin's token, making the admin user first when InfluxDB has no user yet (a fresh
        server, or one whose state an older plantmesh made without users)."""
        with file_lock(self.dir / "credentials.lock"):
            path = self.path(ADMIN)
            token = f"{ADMIN}:{self.password(ADMIN)}" if path.exists() else ""
            status, error = influxql(self.url, "SHOW USERS", token)
            if status == 200 and not error and token:
                return token
            if status == 403 and NO_USERS in error:
                # The one statement InfluxDB takes without credentials while it has no user.
                password = self._ensure_file(ADMIN)
                _run(
                    self.url,
                    f"CREATE USER {ADMIN} WITH PASSWORD {_literal(password)} WITH ALL PRIVILEGES",
                    "",
                    f"creating the {ADMIN} user",
                )
                return f"{ADMIN}:{password}"
            if status == 200:
                raise StackError(
                    f"InfluxDB {self.url} answered without credentials: it runs without "
                    "authentication; restart it (`plantmesh stack down influxdb`, then `up`)"
                )
            if not token:
                raise StackError(
                    f"InfluxDB {self.url} has users already, but the admin's token file {path} "
                    f"is missing. Write `{ADMIN}:<its password>` into that file (one line, mode "
                    f"600) and run `plantmesh stack up` again; or, to start InfluxDB afresh and "
                    f"lose its data, run `plantmesh stack down influxdb`, remove "
                    f"{self.dir.parent}/meta, data and wal, and `plantmesh stack up` again"
                )
            raise StackError(
                f"InfluxDB {self.url} refused the admin's token from {path} (HTTP {status}: "
                f"{error}): put the admin's current password in that file (`{ADMIN}:<password>`)"
            )

    def ensure_users(self, admin_token: str, database: str) -> None:
        """Every other user with its password from its file (made once) and exactly its
        privilege on `database`. The files are the truth: a password changed in a file is set
        again in InfluxDB. The database must exist (GRANT needs it)."""
        quoted = '"' + database.replace("\\", "\\\\").replace('"', '\\"') + '"'
        with file_lock(self.dir / "credentials.lock"):
            for user in USERS:
                if user.privilege is None:
                    continue
                password = _literal(self._ensure_file(user.name))
                status, error = influxql(
                    self.url, f"CREATE USER {user.name} WITH PASSWORD {password}", admin_token
                )
                if status == 200 and "user already exists" in error:
                    _run(
                        self.url,
                        f"SET PASSWORD FOR {user.name} = {password}",
                        admin_token,
                        f"setting {user.name}'s password",
                    )
                elif status != 200 or error:
                    raise StackError(
                        f"InfluxDB {self.url}: creating user {user.name} failed "
                        f"(HTTP {status}): {error}"
                    )
                _run(
                    self.url,
                    f"GRANT {user.privilege} ON {quoted} TO {user.name}",
                    admin_token,
                    f"granting {user.privilege} on {database} to {user.name}",
                )
