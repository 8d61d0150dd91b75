"""The local stack's InfluxDB, secured: who may do what, the debug endpoints, the ingest writer
and `plantmesh query` with least-privilege users, secrets kept out of InfluxDB's log, and the
bootstrap across restarts and from an older, user-less state (a private InfluxDB of its own)."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.config import IngestConfig
from ingest.writer import Writer
from plantmesh.config import validate_config
from plantmesh.contracts import AssetPath, Reading, ReadingBatch, encode
from plantmesh.stack import manager
from plantmesh.stack.errors import StackError
from plantmesh.stack.influx_security import ADMIN, ALARMS, READER, WRITER, token_file
from plantmesh.stack.paths import Ports, StackConfig
from tests.support.ingest import produce, writer_running
from tests.support.ports import free_ports
from tests.support.waiting import async_wait_for, wait_for

pytestmark = pytest.mark.integration

opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


def _call(
    url: str, path: str, token: str | None = None, body: dict[str, str] | bytes | None = None
) -> tuple[int, str]:
    data = urllib.parse.urlencode(body).encode() if isinstance(body, dict) else body
    headers = {"Authorization": f"Token {token}"} if token else {}
    request = urllib.request.Request(f"{url}{path}", data=data, headers=headers)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)


def _token(user: str, config: StackConfig | None = None) -> str:
    path = token_file(user, config)
    assert path is not None
    return path.read_text().strip()


@pytest.fixture(scope="module")
def stack_influx(influx_url: str) -> str:
    """The shared stack's InfluxDB, when it is the local stack's and secured."""
    config = StackConfig.from_env()
    if config.insecure or manager.env(config, ["influxdb"])["PLANTMESH_INFLUX_URL"] != influx_url:
        pytest.skip("needs the local stack's InfluxDB, secured (not --insecure, not a container)")
    return influx_url


@pytest.fixture
def measurement(stack_influx: str) -> Iterator[str]:
    """A measurement of this test's own in the plantmesh database, dropped afterwards."""
    name = f"t{uuid.uuid4().hex[:12]}"
    yield name
    status, _ = _call(
        stack_influx,
        "/query",
        _token(ADMIN),
        {"q": f'DROP MEASUREMENT "{name}"', "db": "plantmesh"},
    )
    assert status == 200


def test_anonymous_and_wrong_credentials_are_refused_ping_stays_open(
    stack_influx: str, measurement: str
) -> None:
    line = f"{measurement} v=1".encode()
    assert _call(stack_influx, "/write?db=plantmesh", None, line)[0] == 401
    assert _call(stack_influx, "/write?db=plantmesh", "writer:wrong", line)[0] == 401
    assert _call(stack_influx, "/write?db=plantmesh", "nobody:x", line)[0] == 401
    query = {"q": "SHOW DATABASES"}
    assert _call(stack_influx, "/query", None, query)[0] == 401
    assert _call(stack_influx, "/api/v2/query", None, b'from(bucket: "plantmesh")')[0] == 401
    status, _ = _call(stack_influx, "/ping")
    assert status == 204


@pytest.mark.parametrize(
    "path",
    ["/debug/vars", "/debug/pprof/cmdline", "/debug/pprof/profile", "/debug/requests?seconds=1"],
)
def test_debug_endpoints_are_for_the_admin_only(stack_influx: str, path: str) -> None:
    assert _call(stack_influx, path)[0] == 401
    assert _call(stack_influx, path, _token(READER))[0] == 403
    if path != "/debug/pprof/profile":  # a 30 s CPU profile: the refusals are the point
        status, body = _call(stack_influx, path, _token(ADMIN))
        assert status == 200, body


def test_debug_pages_outside_the_guarded_ones_are_not_served(stack_influx: str) -> None:
    for path in ("/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine"):
        assert _call(stack_influx, path, _token(ADMIN))[0] == 404


def test_each_user_may_do_exactly_its_part(stack_influx: str, measurement: str) -> None:
    writer, reader, alarms, admin = (_token(u) for u in (WRITER, READER, ALARMS, ADMIN))
    select = {"q": f'SELECT * FROM "{measurement}"', "db": "plantmesh"}

    wrote = _call(stack_influx, "/write?db=plantmesh", writer, f"{measurement} v=1 1".encode())
    assert wrote[0] == 204
    status, body = _call(stack_influx, "/query", writer, select)
    assert (status, "requires READ" in body) == (403, True)
    for statement in ("DROP DATABASE plantmesh", f'DROP MEASUREMENT "{measurement}"'):
        status, body = _call(stack_influx, "/query", writer, {"q": statement, "db": "plantmesh"})
        assert (status, "requires admin" in body) == (403, True)

    status, body = _call(stack_influx, "/query", reader, select)
    assert status == 200
    assert '"values":[["1970-01-01T00:00:00.000000001Z",1]]' in body, body
    status, _ = _call(stack_influx, "/write?db=plantmesh", reader, f"{measurement} v=2 2".encode())
    assert status == 403
    status, body = _call(stack_influx, "/query", reader, {"q": "CREATE DATABASE x"})
    assert (status, "requires admin" in body) == (403, True)

    wrote = _call(stack_influx, "/write?db=plantmesh", alarms, f"{measurement} v=3 3".encode())
    assert wrote[0] == 204
    status, body = _call(stack_influx, "/query", alarms, select)
    assert status == 200
    assert body.count('Z",') == 2, body  # the writer's point and this one

    status, body = _call(stack_influx, "/query", admin, {"q": "SHOW USERS"})
    assert status == 200
    for user in (ADMIN, WRITER, READER, ALARMS):
        assert f'"{user}"' in body


async def test_the_writer_stores_as_writer_and_query_reads_as_reader(
    stack_influx: str, namespace: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The writer with the write-only user's token file (it may not create the database: an
    admin made it) and `plantmesh query` with the read-only user's, nothing else given."""
    writer_file, reader_file = token_file(WRITER), token_file(READER)
    config = validate_config(
        IngestConfig,
        {
            "namespace": namespace,
            "kafka": {"bootstrap": kafka_bootstrap, "client_id": namespace},
            "influxdb": {
                "url": stack_influx,
                "bucket": "plantmesh/autogen",
                "token_file": str(writer_file),
            },
            "writer": {"group_id": f"{namespace}-writer", "completeness": {"enabled": False}},
            "backoff": {"initial_s": 0.05, "max_s": 0.2},
        },
    )
    asset = AssetPath(plant=namespace, area="a", line="l", machine="m1")
    at = datetime.now(UTC) - timedelta(seconds=30)
    readings = [
        Reading(asset=asset, signal="temp", value=21.5, source_ts=at, gateway_ts=at),
        Reading(asset=asset, signal="rpm", value=1450.0, source_ts=at, gateway_ts=at),
    ]
    batch = ReadingBatch(gateway_id="gw-1", session_id="s1", seq=1, sent_at=at, readings=readings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANTMESH_INFLUX_TOKEN")}
    query = [sys.executable, "-m", "plantmesh.cli", "query", "--url", stack_influx]
    command = [*query, "--token-file", str(reader_file)]
    try:
        async with writer_running(Writer(config)) as writer:
            key = f"{namespace}/m1".encode()
            await produce(kafka_bootstrap, config.topics.telemetry_raw, [(key, encode(batch), [])])

            async def stored() -> bool:
                return writer.stats.written_points >= 2

            await async_wait_for(stored, 30, "the writer to store both readings")
            assert writer.stats.influx_failures == 0

        for flux in ([], ["--flux"]):
            args = [*command, *flux, "last", "--plant", namespace, "--since", "1h"]
            answer = await asyncio.to_thread(_run, args, env)
            assert answer.returncode == 0, answer.stderr
            for shown in ("temp", "21.5", "rpm", "1450"):
                assert shown in answer.stdout, answer.stdout
        secret = _token(READER).split(":", 1)[1]
        assert secret not in " ".join(command)  # a file name on the command line, not the secret
        args = [*query, "--token-file", str(writer_file), "influxql", "SELECT * FROM readings"]
        refused = await asyncio.to_thread(_run, args, env)
        assert refused.returncode == 1
        assert "requires READ" in refused.stderr, refused.stderr
    finally:
        status, _ = _call(
            stack_influx,
            "/query",
            _token(ADMIN),
            {"q": f"DELETE FROM readings WHERE plant = '{namespace}'", "db": "plantmesh"},
        )
        assert status == 200


def test_no_password_reaches_the_influxdb_log(stack_influx: str) -> None:
    """InfluxDB logs refused statements: a password in one shows as [REDACTED]; and none of
    the users' passwords is anywhere in its log (ours travel in request bodies)."""
    probe = secrets.token_urlsafe(16)
    statement = f"CREATE USER probe WITH PASSWORD '{probe}'"
    status, body = _call(stack_influx, "/query", _token(READER), {"q": statement})
    assert status == 403
    assert probe not in body
    log = manager.log_file("influxdb")
    wait_for(
        lambda: "CREATE USER probe WITH PASSWORD [REDACTED]" in log.read_text(errors="replace"),
        10,
        "InfluxDB to log the refused statement",
    )
    text = log.read_text(errors="replace")
    assert probe not in text
    for user in (ADMIN, WRITER, READER, ALARMS):
        assert _token(user).split(":", 1)[1] not in text, f"{user}'s password is in {log}"


@pytest.mark.slow
def test_users_survive_restarts_and_an_older_user_less_state_is_upgraded(tmp_path: Path) -> None:
    """A private InfluxDB: first as an older plantmesh left it (no users, data in it), then
    secured by `up`, restarted, and once with the admin's file missing."""
    ports = Ports(influx=free_ports(2))
    cfg = StackConfig(StackConfig.from_env().cache, tmp_path / "state", ports, insecure=True)
    secured = StackConfig(cache=cfg.cache, state=cfg.state, ports=cfg.ports)
    quiet = lambda _: None  # noqa: E731
    try:
        url = manager.up(cfg, ["influxdb"], quiet)["PLANTMESH_INFLUX_URL"]
        assert _call(url, "/write?db=plantmesh", None, b"old v=1 1")[0] == 204
        manager.down(cfg, ["influxdb"], quiet)

        manager.up(secured, ["influxdb"], quiet)
        tokens = {u: _token(u, secured) for u in (ADMIN, WRITER, READER, ALARMS)}
        select = {"q": "SELECT * FROM old", "db": "plantmesh"}
        assert _call(url, "/query", None, select)[0] == 401
        status, body = _call(url, "/query", tokens[READER], select)
        assert status == 200
        assert '"values"' in body, body  # the old data, now behind a password

        manager.down(secured, ["influxdb"], quiet)
        manager.up(secured, ["influxdb"], quiet)
        assert {u: _token(u, secured) for u in tokens} == tokens  # made once, kept
        assert _call(url, "/query", tokens[READER], select)[0] == 200

        manager.down(secured, ["influxdb"], quiet)
        admin_file = token_file(ADMIN, secured)
        assert admin_file is not None
        admin_file.unlink()
        with pytest.raises(StackError, match="has users already") as refused:
            manager.up(secured, ["influxdb"], quiet)
        assert str(admin_file) in str(refused.value)
        assert manager.status(secured, ["influxdb"])[0].pid is None  # not left running
        assert all(tokens[u].split(":")[1] not in str(refused.value) for u in tokens)
    finally:
        manager.down(cfg, ["influxdb"], quiet)
