"""The secured local Kafka for real: SCRAM authentication, each service principal's ACLs, no
topic auto-creation, no password in `ps` or the broker's log, and `stack up` securing a Kafka
whose storage an older plantmesh formatted without users.

Most tests use the session's Kafka (skipped unless it is the secured local stack) with topics
of their own namespace, granted to the service principals for the test and revoked after it."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from pydantic import SecretStr

from plantmesh.connections import KafkaConnection
from plantmesh.kafka.admin import ensure_topics
from plantmesh.kafka.clients import start_client
from plantmesh.kafka.principals import ALERTING, BRIDGE, WRITER, service_acls
from plantmesh.kafka.security import kafka_client_options
from plantmesh.stack import kafka_security as security
from plantmesh.stack import manager
from plantmesh.stack.kafka import Kafka
from plantmesh.stack.paths import Ports, StackConfig
from plantmesh.topics import Topics
from tests.support.ports import free_ports
from tests.support.stack import remove_server_files
from tests.support.waiting import SCALE, async_wait_for

pytestmark = pytest.mark.integration

TIMEOUT_MS = int(10_000 * SCALE)


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str) -> StackConfig:
    """The session's Kafka as a local stack config: only when it is the secured stack."""
    cfg = StackConfig.from_env()
    if cfg.insecure or kafka_bootstrap != f"127.0.0.1:{cfg.ports.kafka}":
        pytest.skip("needs the secured local stack's Kafka")
    if not Kafka(cfg).serves_sasl():
        pytest.skip("the local stack's Kafka runs without authentication: restart it")
    return cfg


@pytest.fixture
async def topics(stack: StackConfig, namespace: str) -> AsyncIterator[Topics]:
    """This test's namespace, granted to the three service principals as the services need
    it (groups `<namespace>-writer` and `<namespace>-alerting`); revoked afterwards."""
    ns = Topics(namespace)
    acls = [
        *service_acls(BRIDGE, ns, groups=[]),
        *service_acls(WRITER, ns, groups=[f"{namespace}-writer"]),
        *service_acls(ALERTING, ns, groups=[f"{namespace}-alerting"]),
    ]
    await security.grant(acls, stack)
    yield ns
    assert await security.revoke(acls, stack) == len(set(acls))


def as_user(stack: StackConfig, user: str) -> KafkaConnection:
    return security.connection(user, stack, client_id=f"test-{user}")


async def send(kafka: KafkaConnection, topic: str, value: bytes = b"v") -> None:
    producer = AIOKafkaProducer(
        **kafka_client_options(kafka),
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=TIMEOUT_MS,
    )
    await start_client(producer)
    try:
        await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


async def read(kafka: KafkaConnection, topic: str, group: str | None = None) -> list[bytes]:
    """Read `topic` from the start until something arrived; commit it when in a group."""
    consumer = AIOKafkaConsumer(
        topic,
        **kafka_client_options(kafka),
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        request_timeout_ms=TIMEOUT_MS,
    )
    await start_client(consumer)
    got: list[bytes] = []
    try:

        async def arrived() -> bool:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                got.extend(r.value for r in records)
            return bool(got)

        await async_wait_for(arrived, 20, f"a record on {topic}")
        if group is not None:
            await consumer.commit()
    finally:
        await consumer.stop()
    return got


async def bootstraps(options: dict[str, Any]) -> None:
    admin = AIOKafkaAdminClient(**options, request_timeout_ms=TIMEOUT_MS)
    try:
        await admin.start()
    finally:
        await admin.close()


# --- authentication ----------------------------------------------------------------------------
async def test_anonymous_plaintext_client_is_refused(stack: StackConfig) -> None:
    plain = KafkaConnection(
        bootstrap=f"127.0.0.1:{stack.ports.kafka}", security_protocol="PLAINTEXT"
    )
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        await bootstraps(kafka_client_options(plain))


async def test_wrong_password_is_refused(stack: StackConfig) -> None:
    wrong = KafkaConnection(
        bootstrap=f"127.0.0.1:{stack.ports.kafka}", username="admin", password=SecretStr("nope")
    )
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        await bootstraps(kafka_client_options(wrong))


async def test_admin_creates_writes_and_reads(stack: StackConfig, namespace: str) -> None:
    admin = as_user(stack, "admin")
    topic = f"{namespace}.admin"
    assert await ensure_topics(admin, [topic], 2, 1) == [topic]
    await send(admin, topic, b"from admin")
    assert await read(admin, topic, group=f"{namespace}-any-group") == [b"from admin"]


# --- each service's principal ------------------------------------------------------------------
async def test_bridge_writes_raw_but_reads_nothing(stack: StackConfig, topics: Topics) -> None:
    bridge = as_user(stack, "bridge")
    own = [topics.telemetry_raw, topics.gateway_status, topics.telemetry_dlq]
    assert await ensure_topics(bridge, own, 4, 1) == own  # each service creates its own topics
    await send(bridge, topics.telemetry_raw, b"raw")
    await send(bridge, topics.telemetry_dlq, b"bad")
    with pytest.raises(TopicAuthorizationFailedError):
        await read(bridge, topics.telemetry_raw)
    await ensure_topics(as_user(stack, "admin"), [topics.telemetry_normalized], 4, 1)
    with pytest.raises(TopicAuthorizationFailedError):
        await send(bridge, topics.telemetry_normalized)


async def test_writer_reads_raw_in_its_group_and_writes_normalized_and_dlq(
    stack: StackConfig, topics: Topics, namespace: str
) -> None:
    writer = as_user(stack, "writer")
    made = [topics.telemetry_raw, topics.telemetry_normalized, topics.telemetry_dlq]
    assert await ensure_topics(writer, made, 4, 1) == made
    await send(as_user(stack, "bridge"), topics.telemetry_raw, b"raw")
    assert await read(writer, topics.telemetry_raw, group=f"{namespace}-writer") == [b"raw"]
    # A derived group id (the ledger's) is covered by the PREFIXED group ACL.
    assert await read(writer, topics.telemetry_raw, group=f"{namespace}-writer-ledger")
    with pytest.raises(GroupAuthorizationFailedError):
        await read(writer, topics.telemetry_raw, group=f"{namespace}-someone-else")
    await send(writer, topics.telemetry_normalized, b"normalized")
    await send(writer, topics.telemetry_dlq, b"dead letter")
    with pytest.raises(TopicAuthorizationFailedError):
        await send(writer, topics.telemetry_raw)


async def test_alerting_reads_normalized_but_not_raw(
    stack: StackConfig, topics: Topics, namespace: str
) -> None:
    alerting = as_user(stack, "alerting")
    admin = as_user(stack, "admin")
    await ensure_topics(admin, [topics.telemetry_raw, topics.telemetry_normalized], 4, 1)
    await send(admin, topics.telemetry_raw, b"raw")
    await send(as_user(stack, "writer"), topics.telemetry_normalized, b"normalized")
    group = f"{namespace}-alerting"
    assert await read(alerting, topics.telemetry_normalized, group=group) == [b"normalized"]
    with pytest.raises(TopicAuthorizationFailedError):
        await read(alerting, topics.telemetry_raw, group=group)
    assert await ensure_topics(alerting, [topics.alert_events], 4, 1) == [topics.alert_events]
    await send(alerting, topics.alert_events, b"raised")
    assert await read(alerting, topics.alert_events, group=group) == [b"raised"]


# --- no auto-creation, no secrets --------------------------------------------------------------
async def test_producing_to_a_missing_topic_does_not_create_it(
    stack: StackConfig, namespace: str
) -> None:
    admin = as_user(stack, "admin")
    missing = f"{namespace}.never-created"
    producer = AIOKafkaProducer(**kafka_client_options(admin), request_timeout_ms=2000)
    await start_client(producer)
    try:
        with pytest.raises(KafkaError):
            await producer.send_and_wait(missing, b"lost")
    finally:
        await producer.stop()
    client = AIOKafkaAdminClient(**kafka_client_options(admin))
    try:
        await client.start()
        assert missing not in await client.list_topics()
    finally:
        await client.close()


def test_no_password_in_ps_or_the_kafka_log(stack: StackConfig) -> None:
    passwords = [security.read_password(security.password_path(stack, u)) for u in security.USERS]
    processes = subprocess.run(
        ["ps", "-eww", "-o", "args"], capture_output=True, text=True, check=True
    ).stdout
    assert "kafka.Kafka" in processes
    log = manager.log_file("kafka", stack).read_text(errors="replace")
    assert "Kafka Server started" in log
    for password in passwords:
        assert password not in processes
        assert password not in log
    assert "server.properties" in processes
    properties = Kafka(stack).properties_path.read_text()
    assert not any(p in properties for p in passwords)


# --- securing an old stack ---------------------------------------------------------------------
@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[StackConfig]:
    cfg = StackConfig(
        cache=StackConfig.from_env().cache,
        state=tmp_path / "state",
        ports=Ports(kafka=free_ports(1)),
    )
    yield cfg
    manager.down(cfg, only=["kafka"], report=lambda _: None)
    remove_server_files(cfg)


@pytest.mark.slow
async def test_up_secures_storage_formatted_without_users(own_stack: StackConfig) -> None:
    """A Kafka formatted and run without users (as an older plantmesh did, or --insecure)
    is secured by a plain `up`: its data stays, old clients are refused, users work."""
    insecure = own_stack.with_insecure(True)
    plain = KafkaConnection(
        bootstrap=f"127.0.0.1:{insecure.ports.kafka}", security_protocol="PLAINTEXT"
    )
    manager.up(insecure, only=["kafka"], report=lambda _: None)
    await ensure_topics(plain, ["kept"], 1, 1)
    await send(plain, "kept", b"written before")
    manager.down(insecure, only=["kafka"], report=lambda _: None)

    lines: list[str] = []
    secured = own_stack.with_insecure(False)
    manager.up(secured, only=["kafka"], report=lines.append)
    assert any("securing storage formatted without users" in line for line in lines), lines
    assert await read(as_user(secured, "admin"), "kept") == [b"written before"]
    with pytest.raises(KafkaConnectionError):
        await bootstraps(kafka_client_options(plain))
    # The default ACLs are in place: the bridge writes the default raw topic at once.
    bridge = as_user(secured, "bridge")
    await ensure_topics(bridge, [Topics().telemetry_raw], 1, 1)
    await send(bridge, Topics().telemetry_raw)
    assert manager.extra_env(secured, only=["kafka"]) == {
        "PLANTMESH_KAFKA_USERNAME": "admin",
        "PLANTMESH_KAFKA_PASSWORD_FILE": str(security.password_path(secured, "admin")),
    }

    # A restart keeps users and passwords and needs no second setup start.
    manager.down(secured, only=["kafka"], report=lambda _: None)
    lines.clear()
    manager.up(secured, only=["kafka"], report=lines.append)
    assert not any("admin user" in line for line in lines), lines
    assert await read(as_user(secured, "admin"), "kept") == [b"written before"]
