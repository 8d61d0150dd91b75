"""Where integration tests get their real servers (a pytest plugin, loaded by conftest.py).

For each server, the first that applies:
1. its environment variable: PLANTMESH_MQTT_URL, PLANTMESH_KAFKA_BOOTSTRAP, PLANTMESH_INFLUX_URL,
   PLANTMESH_DATABASE_URL;
2. a container from the official image (testcontainers) when a Docker engine answers;
3. the project's local stack (`plantmesh stack up`, on the ports it is configured for), brought
   up for the session; what this session started it stops at the end, nothing else.
Servers are started lazily, only for the fixtures a test session actually uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plantmesh.influxql import TOKEN_FILE_VAR, TOKEN_VAR, auth_headers, env_token
from tests.support.namespaces import NAMESPACES
from tests.support.ports import free_port

ENV_VARS = {
    "mosquitto": "PLANTMESH_MQTT_URL",
    "kafka": "PLANTMESH_KAFKA_BOOTSTRAP",
    "influxdb": "PLANTMESH_INFLUX_URL",
    "postgres": "PLANTMESH_DATABASE_URL",
}


class LocalStack:
    """Servers from `plantmesh.stack`; stops at the end only those this session started."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._started: list[str] = []

    def url(self, server: str) -> str:
        from plantmesh.stack import manager
        from plantmesh.stack.errors import StackError

        capture = self._config.pluginmanager.getplugin("capturemanager")
        terminal = self._config.pluginmanager.getplugin("terminalreporter")

        def report(line: str) -> None:  # first-time provisioning takes minutes: show it live
            with capture.global_and_fixture_disabled():
                terminal.ensure_newline()
                terminal.write_line(f"plantmesh stack {line}")

        try:
            result = manager.bring_up(only=[server], report=report)
        except StackError as exc:
            pytest.fail(f"could not start the local {server} for the tests:\n{exc}", pytrace=False)
        self._started += result.started
        return result.urls[ENV_VARS[server]]

    def close(self) -> None:
        if self._started:
            from plantmesh.stack import manager

            manager.down(only=self._started, report=lambda _: None)


class Containers:
    """Official images through testcontainers, published on loopback ports only."""

    def __init__(self) -> None:
        self._running: list[Any] = []

    def url(self, server: str) -> str:
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.wait_strategies import HttpWaitStrategy, LogMessageWaitStrategy

        port = free_port()
        if server == "mosquitto":
            container = DockerContainer("eclipse-mosquitto:2").with_command(
                "mosquitto -c /mosquitto-no-auth.conf"  # the image's config: anonymous on 1883
            )
            container.waiting_for(LogMessageWaitStrategy(r"mosquitto version \S+ running"))
            inner, url = 1883, f"mqtt://127.0.0.1:{port}"
        elif server == "kafka":
            # The advertised address must be the host's, so the host port is chosen up front.
            container = DockerContainer("apache/kafka:4.1.1").with_envs(
                KAFKA_NODE_ID="1",
                KAFKA_PROCESS_ROLES="broker,controller",
                KAFKA_LISTENERS="PLAINTEXT://:9092,CONTROLLER://:9093",
                KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://127.0.0.1:{port}",
                KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
                KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
                KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
                KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
                KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
                KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR="1",
                KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR="1",
                KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
                KAFKA_NUM_PARTITIONS="4",
                KAFKA_AUTO_CREATE_TOPICS_ENABLE="true",
            )
            container.waiting_for(LogMessageWaitStrategy("Kafka Server started"))
            inner, url = 9092, f"127.0.0.1:{port}"
        elif server == "postgres":
            container = DockerContainer("postgres:15").with_envs(
                POSTGRES_USER="plantmesh", POSTGRES_PASSWORD="plantmesh", POSTGRES_DB="plantmesh"
            )
            container.waiting_for(
                LogMessageWaitStrategy("database system is ready to accept connections")
            )
            inner, url = 5432, f"postgresql://plantmesh:plantmesh@127.0.0.1:{port}/plantmesh"
        else:
            container = DockerContainer("influxdb:1.8").with_env(
                "INFLUXDB_HTTP_FLUX_ENABLED", "true"
            )
            container.waiting_for(HttpWaitStrategy(8086, "/ping").for_status_code(204))
            inner, url = 8086, f"http://127.0.0.1:{port}"
        # docker-py accepts (host_ip, port): publish on loopback only, not on every interface.
        container.ports[f"{inner}/tcp"] = ("127.0.0.1", port)  # type: ignore[assignment]
        container.start()
        self._running.append(container)
        return url

    def close(self) -> None:
        for container in reversed(self._running):
            container.stop()


def docker_reachable() -> bool:
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False  # the usual case here: skip importing docker at all
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def _server_source(pytestconfig: pytest.Config) -> Iterator[LocalStack | Containers]:
    source: LocalStack | Containers
    source = Containers() if docker_reachable() else LocalStack(pytestconfig)
    yield source
    source.close()


def _resolve(request: pytest.FixtureRequest, server: str) -> str:
    if value := os.environ.get(ENV_VARS[server]):
        return value
    source: LocalStack | Containers = request.getfixturevalue("_server_source")
    return source.url(server)


@pytest.fixture(scope="session")
def mqtt_url(request: pytest.FixtureRequest) -> str:
    """mqtt://host:port of a Mosquitto 2 broker allowing anonymous clients."""
    return _resolve(request, "mosquitto")


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    """host:port of a single-node Kafka 4.1. On the secured local stack (no topic
    auto-creation) the tests act as its admin: every KafkaConnection, and every service the
    tests start, reads PLANTMESH_KAFKA_USERNAME and PLANTMESH_KAFKA_PASSWORD_FILE. At the end of
    the session the topics of every test namespace are deleted: a broker left with thousands of
    partitions spends its CPU on them (benchmarks on the same stack slowed down by half)."""
    bootstrap = _resolve(request, "kafka")
    _stack_kafka_admin(bootstrap)
    yield bootstrap
    if NAMESPACES:
        thread = threading.Thread(
            target=asyncio.run, args=(_delete_topics(bootstrap, tuple(NAMESPACES)),)
        )
        thread.start()
        thread.join()


def _stack_kafka_admin(bootstrap: str) -> None:
    """The local stack's Kafka admin into the environment, for a session that did not
    `eval "$(plantmesh stack env)"` (or did before the stack was secured)."""
    if os.environ.get("PLANTMESH_KAFKA_USERNAME"):
        return
    from plantmesh.stack import manager

    if manager.env(only=["kafka"]).get(ENV_VARS["kafka"]) == bootstrap:
        os.environ.update(manager.extra_env(only=["kafka"]))


async def _delete_topics(bootstrap: str, prefixes: tuple[str, ...]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from tests.support.kafka import kafka_options

    admin = AIOKafkaAdminClient(**kafka_options(bootstrap))
    try:
        await admin.start()
        doomed = [name for name in await admin.list_topics() if name.startswith(prefixes)]
        for start in range(0, len(doomed), 200):
            await admin.delete_topics(doomed[start : start + 200])
    except Exception as exc:  # tidying up: never fail the session over it
        print(f"\nleft the test topics in Kafka: {exc!r}")
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


@pytest.fixture(scope="session")
def influx_url(request: pytest.FixtureRequest) -> str:
    """http://host:port of an InfluxDB 1.8 with Flux (v2 API: bucket "db/autogen"). On the
    secured local stack the tests act as its admin (they create and drop databases): every
    InfluxConnection and every service the tests start reads PLANTMESH_INFLUX_TOKEN_FILE."""
    url = _resolve(request, "influxdb")
    _stack_admin_credentials(url)
    return url


def _stack_admin_credentials(url: str) -> None:
    """The local stack's admin token file into the environment, for a session that did not
    `eval "$(plantmesh stack env)"` (or did before the stack made the file)."""
    if os.environ.get(TOKEN_VAR) or os.environ.get(TOKEN_FILE_VAR):
        return
    from plantmesh.stack import manager

    if manager.env(only=["influxdb"]).get(ENV_VARS["influxdb"]) == url:
        os.environ.update(manager.extra_env(only=["influxdb"]))


def influx_auth() -> dict[str, str]:
    """The session's InfluxDB credentials as request headers (none without a token)."""
    return auth_headers(env_token())


def influx_query(url: str, statement: str, db: str | None = None) -> dict[str, Any]:
    """Run InfluxQL against /query (POST, so CREATE/DROP work) with the environment's
    credentials (a header, never the URL); fail on an error in the answer."""
    fields = {"q": statement, **({"db": db} if db else {})}
    request = urllib.request.Request(
        f"{url}/query",
        data=urllib.parse.urlencode(fields).encode(),
        method="POST",
        headers=influx_auth(),
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    with opener.open(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
    error = answer.get("error") or next(
        (r["error"] for r in answer.get("results", []) if "error" in r), None
    )
    if error:
        raise AssertionError(f"InfluxQL {statement!r} failed: {error}")
    return answer


@pytest.fixture(scope="session")
def postgres_url(request: pytest.FixtureRequest) -> str:
    """postgresql://user:password@host:port/db of a PostgreSQL server (the user may create
    databases)."""
    return _resolve(request, "postgres")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of this test's own, once on SQLite and once on PostgreSQL: the alarm
    records run the same code and the same tests on both."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'alarms.db'}"
        return
    yield request.getfixturevalue("postgres_database")


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """An empty PostgreSQL database of this test's own, dropped afterwards."""
    name = f"t{uuid.uuid4().hex[:12]}"
    _postgres_admin(postgres_url, f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(postgres_url)
    yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    _postgres_admin(postgres_url, f'DROP DATABASE "{name}" WITH (FORCE)')


def _postgres_admin(server: str, statement: str) -> None:
    """One statement outside a transaction (CREATE/DROP DATABASE), from a thread of its own so
    it works inside and outside a running event loop."""
    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(server)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@pytest.fixture
def influx_database(influx_url: str) -> Iterator[str]:
    """A database of this test's own on the InfluxDB server, dropped afterwards."""
    name = f"t{uuid.uuid4().hex[:12]}"
    influx_query(influx_url, f'CREATE DATABASE "{name}"')
    yield name
    influx_query(influx_url, f'DROP DATABASE "{name}"')
