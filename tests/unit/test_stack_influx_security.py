"""InfluxDB secured by the local stack: its config, the users' token files, the bootstrap's
conversation with InfluxDB (against a stand-in that answers like InfluxDB 1.8.10 does), and
clients' credentials: never in a URL or on a command line."""

from __future__ import annotations

import json
import re
import stat
import threading
import tomllib
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError

from ingest.influx import InfluxSink
from plantmesh.connections import InfluxConnection
from plantmesh.influxql import TOKEN_FILE_VAR, TOKEN_VAR, InfluxQueryError, flux, query
from plantmesh.stack.errors import StackError
from plantmesh.stack.influx_security import USERS, InfluxSecurity, token_file
from plantmesh.stack.influxdb import InfluxDB, render_config
from plantmesh.stack.paths import Ports, StackConfig

ADMIN_STATEMENT = re.compile(r"^CREATE USER (\w+) WITH PASSWORD '([^']*)' WITH ALL PRIVILEGES$")
CREATE_USER = re.compile(r"^CREATE USER (\w+) WITH PASSWORD '([^']*)'$")
SET_PASSWORD = re.compile(r"^SET PASSWORD FOR (\w+) = '([^']*)'$")
GRANT = re.compile(r'^GRANT (READ|WRITE|ALL) ON "([^"]+)" TO (\w+)$')


@pytest.fixture(autouse=True)
def _no_environment_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_VAR, raising=False)
    monkeypatch.delenv(TOKEN_FILE_VAR, raising=False)


# --- a stand-in for InfluxDB 1.8.10's /query with auth-enabled ------------------------------
@dataclass
class Request:
    path: str
    """With the query string: what an access log would show."""
    authorization: str | None
    body: str


@dataclass
class FakeInflux:
    users: dict[str, str] = field(default_factory=dict)
    admins: set[str] = field(default_factory=set)
    grants: dict[tuple[str, str], str] = field(default_factory=dict)
    databases: set[str] = field(default_factory=set)
    requests: list[Request] = field(default_factory=list)
    url: str = ""

    def answer(self, request: Request) -> tuple[int, dict[str, object]]:
        statement = urllib.parse.parse_qs(request.body).get("q", [""])[0]
        if not self.admins:  # no admin yet: credentials are not even looked at
            if (made := ADMIN_STATEMENT.match(statement)) and not self.users:
                self.users[made[1]] = made[2]
                self.admins.add(made[1])
                return 200, {"results": [{"statement_id": 0}]}
            return 403, {"error": "error authorizing query: create admin user first or disable"}
        token = (request.authorization or "").removeprefix("Token ")
        user, _, password = token.partition(":")
        if not request.authorization:
            return 401, {"error": "unable to parse authentication credentials"}
        if self.users.get(user) != password:
            return 401, {"error": "authorization failed"}
        if user not in self.admins:
            return 403, {"error": f"error authorizing query: {user} requires admin privilege"}
        return 200, {"results": [self.execute(statement)]}

    def execute(self, statement: str) -> dict[str, object]:
        if statement == "SHOW USERS":
            rows = [[name, name in self.admins] for name in self.users]
            return {"series": [{"columns": ["user", "admin"], "values": rows}]}
        if statement == "SHOW DATABASES":
            names = [[name] for name in sorted(self.databases)]
            return {"series": [{"name": "databases", "columns": ["name"], "values": names}]}
        if made := CREATE_USER.match(statement):
            if made[1] in self.users and self.users[made[1]] != made[2]:
                return {"error": "user already exists"}
            self.users[made[1]] = made[2]
        elif made := SET_PASSWORD.match(statement):
            self.users[made[1]] = made[2]
        elif made := GRANT.match(statement):
            if made[2] not in self.databases:
                return {"error": "database not found"}
            self.grants[made[3], made[2]] = made[1]
        elif statement.startswith("CREATE DATABASE "):
            self.databases.add(statement.split()[-1].strip('"'))
        else:
            return {"error": f"unexpected statement {statement!r}"}
        return {"statement_id": 0}


@pytest.fixture
def influx() -> Iterator[FakeInflux]:
    fake = FakeInflux()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                self.path, self.headers.get("Authorization"), self.rfile.read(length).decode()
            )
            fake.requests.append(request)
            if self.path.startswith("/query"):
                status, answer = fake.answer(request)
            else:  # no Flux here
                status, answer = 404, {"error": "not found"}
            body = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="fake-influx")
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _bootstrap(security: InfluxSecurity, fake: FakeInflux) -> str:
    admin = security.admin_token()
    fake.execute('CREATE DATABASE "plantmesh"')  # what InfluxDB.after_start does in between
    security.ensure_users(admin, "plantmesh")
    return admin


def _passwords(directory: Path) -> list[str]:
    return [p.read_text().strip().split(":", 1)[1] for p in directory.glob("credentials/*.token")]


def _leaks(fake: FakeInflux, secrets: list[str]) -> list[str]:
    return [r.path for r in fake.requests if any(s in r.path for s in secrets)]


# --- the bootstrap ---------------------------------------------------------------------------
def test_a_fresh_influxdb_gets_an_admin_then_each_user_with_exactly_its_privilege(
    tmp_path: Path, influx: FakeInflux
) -> None:
    security = InfluxSecurity(tmp_path / "security", influx.url)
    admin = _bootstrap(security, influx)

    assert set(influx.users) == {u.name for u in USERS}
    assert influx.admins == {"admin"}
    assert influx.grants == {
        ("writer", "plantmesh"): "WRITE",
        ("reader", "plantmesh"): "READ",
        ("alarms", "plantmesh"): "ALL",
    }
    for user in USERS:
        path = security.path(user.name)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        name, password = path.read_text().removesuffix("\n").split(":")
        assert (name, password) == (user.name, influx.users[user.name])
        assert len(password) >= 32
    assert stat.S_IMODE((security.dir / "credentials").stat().st_mode) == 0o700
    assert admin == f"admin:{influx.users['admin']}"
    # Passwords travel in the POST body only: no URL (what access logs keep) carries one.
    secrets = _passwords(security.dir)
    assert _leaks(influx, secrets) == []
    assert all(r.path == "/query" for r in influx.requests)
    # Only the very first CREATE USER goes without credentials; everything after as admin.
    anonymous = [r for r in influx.requests if r.authorization is None]
    assert [urllib.parse.parse_qs(r.body)["q"][0].split(" WITH")[0] for r in anonymous] == [
        "SHOW USERS",
        "CREATE USER admin",
    ]


def test_the_files_are_kept_and_a_password_changed_in_a_file_is_set_again(
    tmp_path: Path, influx: FakeInflux
) -> None:
    security = InfluxSecurity(tmp_path / "security", influx.url)
    _bootstrap(security, influx)
    before = {u.name: security.path(u.name).read_text() for u in USERS}

    _bootstrap(security, influx)  # the next `stack up`
    assert {u.name: security.path(u.name).read_text() for u in USERS} == before

    security.path("reader").write_text("reader:rotated-by-the-operator\n")
    _bootstrap(security, influx)
    assert influx.users["reader"] == "rotated-by-the-operator"


def test_an_admin_without_our_file_is_a_clear_error_and_nothing_is_guessed(
    tmp_path: Path, influx: FakeInflux
) -> None:
    influx.users["admin"] = "somebody-elses"
    influx.admins.add("admin")
    security = InfluxSecurity(tmp_path / "security", influx.url)
    with pytest.raises(StackError) as refused:
        security.admin_token()
    message = str(refused.value)
    assert "has users already" in message
    assert str(security.path("admin")) in message
    assert "admin:<its password>" in message
    assert not security.path("admin").exists()
    assert influx.users == {"admin": "somebody-elses"}


def test_a_wrong_admin_file_is_refused_with_the_file_named(
    tmp_path: Path, influx: FakeInflux
) -> None:
    influx.users["admin"] = "the-real-one"
    influx.admins.add("admin")
    security = InfluxSecurity(tmp_path / "security", influx.url)
    security.path("admin").parent.mkdir(parents=True)
    security.path("admin").write_text("admin:a-stale-one\n")
    with pytest.raises(StackError, match="refused the admin's token") as refused:
        security.admin_token()
    assert "a-stale-one" not in str(refused.value)


def test_a_token_file_naming_another_user_is_refused(tmp_path: Path) -> None:
    security = InfluxSecurity(tmp_path, "http://127.0.0.1:9")
    security.path("writer").parent.mkdir(parents=True)
    security.path("writer").write_text("admin:x\n")
    with pytest.raises(StackError, match="writer:<password>"):
        security.password("writer")


# --- the server's config and the stack's commands --------------------------------------------
def test_secured_config_closes_debug_endpoints_and_keeps_ping_open(tmp_path: Path) -> None:
    http = tomllib.loads(render_config(Ports(influx=38086), tmp_path))["http"]
    assert http["auth-enabled"] is True
    # pprof-auth-enabled only works with pprof-enabled: off, /debug/vars is open to anyone.
    assert (http["pprof-enabled"], http["pprof-auth-enabled"]) == (True, True)
    assert http["ping-auth-enabled"] is False
    assert http["log-enabled"] is False
    insecure = tomllib.loads(render_config(Ports(influx=38086), tmp_path, secure=False))["http"]
    assert "auth-enabled" not in insecure


def test_stack_env_and_token_files_follow_the_mode(tmp_path: Path) -> None:
    cfg = StackConfig(cache=tmp_path, state=tmp_path / "s", ports=Ports(influx=38086))
    server = InfluxDB(cfg)
    assert server.extra_env() == {}  # before `up` made the admin's file: no credentials
    admin = token_file("admin", cfg)
    assert admin == tmp_path / "s/influxdb/security/credentials/admin.token"
    admin.parent.mkdir(parents=True)
    admin.write_text("admin:secret-in-file\n")
    assert server.extra_env() == {TOKEN_FILE_VAR: str(admin)}
    assert "secret-in-file" not in " ".join(server.command())

    insecure = StackConfig(cache=tmp_path, state=tmp_path / "s", insecure=True)
    assert InfluxDB(insecure).extra_env() == {}
    assert token_file("reader", insecure) is None
    with pytest.raises(StackError, match="no InfluxDB user"):
        token_file("root", cfg)


# --- clients: InfluxConnection and the HTTP helpers ------------------------------------------
def test_token_file_is_read_when_connecting(tmp_path: Path) -> None:
    path = tmp_path / "reader.token"
    path.write_text("reader:one\nignored second line\n")
    conn = InfluxConnection(token_file=path)
    assert conn.token_value() == "reader:one"
    path.write_text("reader:rotated\n")
    assert conn.token_value() == "reader:rotated"
    assert "rotated" not in repr(conn)
    path.unlink()
    with pytest.raises(ValueError, match="cannot read the InfluxDB token file"):
        conn.token_value()
    path.write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        conn.token_value()


def test_token_and_token_file_exclude_each_other_explicit_beats_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t"
    path.write_text("writer:w\n")
    with pytest.raises(ValidationError, match="not both"):
        InfluxConnection(token="a:b", token_file=path)
    assert InfluxConnection().token_value() == ""  # nothing anywhere: no credentials

    monkeypatch.setenv(TOKEN_VAR, "env:token")
    assert InfluxConnection().token_value() == "env:token"
    assert InfluxConnection(token_file=path).token_value() == "writer:w"
    monkeypatch.setenv(TOKEN_FILE_VAR, str(path))
    with pytest.raises(ValidationError, match="not both"):
        InfluxConnection()
    monkeypatch.delenv(TOKEN_VAR)
    assert InfluxConnection().token_file == path
    assert InfluxConnection(token="explicit:one").token_value() == "explicit:one"


def test_query_and_flux_send_the_token_in_a_header_never_in_the_url(
    influx: FakeInflux, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    influx.users["admin"] = "pw-in-header"
    influx.admins.add("admin")
    influx.databases.add("plantmesh")
    found = query(influx.url, "plantmesh", "SHOW DATABASES", token="admin:pw-in-header")
    assert found[0].values == [["plantmesh"]]
    (tmp_path / "t").write_text("admin:pw-in-header\n")
    monkeypatch.setenv(TOKEN_FILE_VAR, str(tmp_path / "t"))
    query(influx.url, "plantmesh", "SHOW DATABASES")  # no token given: the environment's
    with pytest.raises(InfluxQueryError, match="answered 404"):
        flux(influx.url, 'from(bucket: "x")', "admin:pw-in-header")
    assert [r.authorization for r in influx.requests] == ["Token admin:pw-in-header"] * 3
    assert influx.requests[-1].path == "/api/v2/query?org=-"
    assert _leaks(influx, ["pw-in-header"]) == []


async def test_a_write_only_user_leaves_creating_the_database_to_an_admin(
    influx: FakeInflux, tmp_path: Path
) -> None:
    influx.users.update(admin="a", writer="w")
    influx.admins.add("admin")
    sink = InfluxSink(InfluxConnection(url=influx.url, token="writer:w"))
    await sink.ensure_database()  # 403: not an error, the writes tell whether it exists
    assert [(r.path, r.authorization) for r in influx.requests] == [("/query", "Token writer:w")]
