"""The secured Kafka's pure parts: server.properties in each mode, the ACLs of each service
principal, the KafkaConnection credentials, the SCRAM hash, and that `stack up`'s Kafka
preparation never puts a password on a command line or into a config file."""

from __future__ import annotations

import base64
import hashlib
import hmac
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from alerting.alarm_service.config import AlarmServiceConfig
from alerting.config import AlertingConfig
from alerting.incidents.stage_config import IncidentsConfig
from ingest.config import WriterSettings
from plantmesh.connections import KafkaConnection
from plantmesh.kafka.acls import Acl, Operation, PatternType, ResourceType
from plantmesh.kafka.principals import (
    ALERTING,
    BRIDGE,
    DEFAULT_GROUPS,
    SERVICES,
    WRITER,
    service_acls,
    topic_access,
)
from plantmesh.kafka.scram import salted_password
from plantmesh.kafka.security import kafka_client_options
from plantmesh.stack import kafka_security as security
from plantmesh.stack.kafka import Kafka, render_server_properties
from plantmesh.stack.paths import Ports, StackConfig
from plantmesh.stack.system import Progress
from plantmesh.topics import Topics

W, R, C = Operation.WRITE, Operation.READ, Operation.CREATE


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")
    return dict(pairs)


def _ops(acls: list[Acl], topic: str) -> set[Operation]:
    return {
        a.operation
        for a in acls
        if a.resource is ResourceType.TOPIC and a.name == topic and a.pattern is PatternType.LITERAL
    }


@pytest.fixture
def no_kafka_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PLANTMESH_KAFKA_USERNAME", "PLANTMESH_KAFKA_PASSWORD_FILE"):
        monkeypatch.delenv(var, raising=False)


# --- server.properties -------------------------------------------------------------------------
def test_secured_properties(tmp_path: Path) -> None:
    props = _properties(render_server_properties(Ports(kafka=39092), tmp_path / "data"))
    assert props["listeners"] == "SASL_PLAINTEXT://127.0.0.1:39092,CONTROLLER://127.0.0.1:39093"
    assert props["advertised.listeners"] == "SASL_PLAINTEXT://127.0.0.1:39092"
    assert props["listener.security.protocol.map"] == (
        "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"
    )
    assert props["inter.broker.listener.name"] == "SASL_PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert props["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["auto.create.topics.enable"] == "false"
    assert props["super.users"] == "User:admin"  # never ANONYMOUS after the first start
    jaas = props["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"]
    assert "password" not in jaas
    assert "username" not in jaas


def test_first_secured_start_lets_the_broker_create_its_acl(tmp_path: Path) -> None:
    props = _properties(render_server_properties(Ports(), tmp_path, bootstrap=True))
    assert props["super.users"] == "User:admin;User:ANONYMOUS"
    assert props["allow.everyone.if.no.acl.found"] == "false"


def test_insecure_properties_are_plaintext_with_auto_creation(tmp_path: Path) -> None:
    props = _properties(render_server_properties(Ports(kafka=39092), tmp_path, secure=False))
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:39092,CONTROLLER://127.0.0.1:39093"
    assert props["auto.create.topics.enable"] == "true"
    assert "authorizer.class.name" not in props
    assert "super.users" not in props


# --- who may do what ---------------------------------------------------------------------------
def test_bridge_only_writes_its_three_topics() -> None:
    t = Topics()
    acls = service_acls(BRIDGE)
    for topic in (t.telemetry_raw, t.gateway_status, t.telemetry_dlq):
        assert _ops(acls, topic) == {W, C}
    assert _ops(acls, t.telemetry_normalized) == set()
    assert not any(a.operation is R for a in acls)
    assert all(a.principal == "User:bridge" for a in acls)
    assert not any(a.resource is ResourceType.GROUP for a in acls)


def test_writer_reads_raw_and_writes_normalized_and_dlq() -> None:
    t = Topics()
    acls = service_acls(WRITER)
    assert _ops(acls, t.telemetry_raw) == {R, C}  # never WRITE: only the bridge writes raw
    assert _ops(acls, t.telemetry_normalized) == {W, C}
    assert _ops(acls, t.telemetry_dlq) == {W, C}
    assert _ops(acls, t.ingest_ledger) == {R, W, C}
    assert _ops(acls, t.alert_events) == set()
    groups = [a for a in acls if a.resource is ResourceType.GROUP]
    assert [(g.name, g.pattern, g.operation) for g in groups] == [
        ("plantmesh-writer", PatternType.PREFIXED, R)  # also covers plantmesh-writer-ledger
    ]


def test_alerting_reads_normalized_but_not_raw() -> None:
    t = Topics()
    acls = service_acls(ALERTING)
    assert _ops(acls, t.telemetry_normalized) == {R, C}
    assert _ops(acls, t.telemetry_raw) == set()
    for own in (t.alert_events, t.alerts_by_class, t.incident_events, t.incidents_state):
        assert _ops(acls, own) == {R, W, C}
    groups = {a.name for a in acls if a.resource is ResourceType.GROUP}
    assert groups == {"plantmesh-alerting", "plantmesh-incidents", "plantmesh-alarms"}


def test_a_namespace_gets_literal_topics_of_its_own() -> None:
    acls = service_acls(BRIDGE, Topics("plant-x"), user="bridge-x")
    topics = {a.name for a in acls if a.resource is ResourceType.TOPIC}
    assert topics == {"plant-x.telemetry.raw", "plant-x.gateway.status", "plant-x.telemetry.dlq"}
    assert {a.pattern for a in acls} == {PatternType.LITERAL}
    assert {a.principal for a in acls} == {"User:bridge-x"}
    writer = service_acls(WRITER, Topics("plant-x"), groups=["plant-x-writer"])
    assert {a.name for a in writer if a.resource is ResourceType.GROUP} == {"plant-x-writer"}


def test_every_topic_has_a_principal_and_every_principal_only_known_topics() -> None:
    t = Topics("ns")
    used = {name for s in SERVICES for name in topic_access(s, t)}
    assert used == set(t.all_kafka)
    with pytest.raises(ValueError, match="no Kafka principal"):
        topic_access("edge")


def test_default_groups_are_the_services_defaults() -> None:
    assert DEFAULT_GROUPS[WRITER] == (WriterSettings().group_id,)
    alerting = (
        AlertingConfig.model_fields["group_id"].default,
        IncidentsConfig.model_fields["group_id"].default,
        AlarmServiceConfig.model_fields["group_id"].default,
    )
    assert DEFAULT_GROUPS[ALERTING] == alerting
    assert security.SERVICE_USERS == SERVICES


# --- KafkaConnection ---------------------------------------------------------------------------
def test_plaintext_without_credentials(no_kafka_env: None) -> None:
    kafka = KafkaConnection(bootstrap="127.0.0.1:1")
    assert (kafka.security_protocol, kafka.username, kafka.sasl) == ("PLAINTEXT", None, False)
    assert kafka_client_options(kafka) == {
        "bootstrap_servers": "127.0.0.1:1",
        "security_protocol": "PLAINTEXT",
    }


def test_environment_credentials_and_the_file_read_per_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "admin.password"
    secret.write_text("first\n")
    monkeypatch.setenv("PLANTMESH_KAFKA_USERNAME", "admin")
    monkeypatch.setenv("PLANTMESH_KAFKA_PASSWORD_FILE", str(secret))
    kafka = KafkaConnection(bootstrap="127.0.0.1:1")
    assert (kafka.username, kafka.password_file) == ("admin", secret)
    options = kafka_client_options(kafka)
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("admin", "first")
    secret.write_text("rotated\r\nignored\n")
    assert kafka_client_options(kafka)["sasl_plain_password"] == "rotated"
    assert "rotated" not in repr(kafka)
    assert "rotated" not in str(kafka.model_dump())

    # A section that names its own user, or asks for PLAINTEXT, ignores the environment's.
    own = KafkaConnection(username="writer", password="w")  # type: ignore[arg-type]
    assert (own.username, own.password_file) == ("writer", None)
    plain = KafkaConnection(security_protocol="PLAINTEXT")
    assert plain.username is None
    assert plain.password_file is None


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"username": "a", "password": "x", "password_file": "/f"}, "not both"),
        ({"password": "x"}, "need `username`"),
        ({"username": "a"}, "needs `username` and `password` or `password_file`"),
        ({"security_protocol": "SASL_SSL"}, "needs `username`"),
        ({"username": "a", "password": "x", "security_protocol": "SSL"}, "needs SASL"),
        ({"ca_file": "/ca.pem"}, "needs security_protocol SSL or SASL_SSL"),
        ({"sasl_mechanism": "GSSAPI", "username": "a", "password": "x"}, "sasl_mechanism"),
    ],
)
def test_inconsistent_settings_are_refused(
    no_kafka_env: None, settings: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        KafkaConnection.model_validate(settings)


def test_tls_and_unreadable_password_file(no_kafka_env: None, tmp_path: Path) -> None:
    tls = KafkaConnection(security_protocol="SSL")
    assert kafka_client_options(tls)["ssl_context"] is not None
    missing = KafkaConnection(username="a", password_file=tmp_path / "none")
    with pytest.raises(ValueError, match=r"cannot read kafka\.password_file"):
        kafka_client_options(missing)


def test_service_connection_of_the_stack(no_kafka_env: None, tmp_path: Path) -> None:
    cfg = StackConfig(cache=tmp_path, state=tmp_path / "state", ports=Ports(kafka=39092))
    writer = security.service_connection("writer", cfg)
    assert writer.bootstrap == "127.0.0.1:39092"
    assert (writer.username, writer.security_protocol) == ("writer", "SASL_PLAINTEXT")
    assert writer.password_file == tmp_path / "state/kafka/security/credentials/writer.password"
    plain = security.service_connection("writer", cfg.with_insecure(True))
    assert (plain.username, plain.security_protocol) == (None, "PLAINTEXT")
    with pytest.raises(security.StackError, match="no Kafka principal"):
        security.service_connection("admin", cfg)


# --- SCRAM -------------------------------------------------------------------------------------
def test_salted_password_is_rfc_5802_hi() -> None:
    """RFC 7677's SCRAM-SHA-256 example: the salted password gives its client proof."""
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    salted = salted_password("pencil", salt, 4096, "SCRAM-SHA-256")
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth = f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r={nonce}"
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    signature = hmac.new(hashlib.sha256(client_key).digest(), auth.encode(), hashlib.sha256)
    proof = bytes(a ^ b for a, b in zip(client_key, signature.digest(), strict=True))
    assert base64.b64encode(proof) == b"dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="


# --- `stack up`'s preparation ------------------------------------------------------------------
def test_prepare_keeps_passwords_off_command_lines_and_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first secured start with Kafka's processes faked: every argv it would run is
    recorded, and no password appears in any of them or in server.properties."""
    cfg = StackConfig(cache=tmp_path / "cache", state=tmp_path / "state", ports=Ports(kafka=39092))
    kafka = Kafka(cfg)
    argvs: list[list[str]] = []
    started_with: list[str] = []

    def run_logged(argv: list[str], *_: Any, **__: Any) -> str:
        argvs.append(list(argv))
        if "format" in argv:
            kafka.data_dir.mkdir(parents=True)
            (kafka.data_dir / "meta.properties").write_text("cluster.id=AAAAAAAAAAAAAAAAAAAAAA\n")
        return "AAAAAAAAAAAAAAAAAAAAAA\n"

    def start_detached(argv: list[str], *_: Any, **__: Any) -> SimpleNamespace:
        argvs.append(list(argv))
        started_with.append(kafka.properties_path.read_text())
        return SimpleNamespace(pid=2**22 + 1)  # above pid_max: never a real process

    setup: list[str] = []
    monkeypatch.setattr("plantmesh.stack.kafka.run_logged", run_logged)
    monkeypatch.setattr(security, "start_detached", start_detached)
    monkeypatch.setattr(security, "read_from", lambda *_: security.STARTED_LINE)
    monkeypatch.setattr(security, "run_sync", lambda _work, what: setup.append(what))
    kafka.prepare(Progress(lambda _: None))

    assert setup == ["creating the admin user"]
    assert "User:ANONYMOUS" in started_with[0]  # the one setup start...
    final = kafka.properties_path.read_text()
    assert "ANONYMOUS" not in final  # ...and never again
    argvs.append(kafka.command())
    passwords = [security.read_password(security.password_path(cfg, u)) for u in security.USERS]
    assert len(set(passwords)) == len(security.USERS)
    for argv in argvs:
        assert not any(p in arg for p in passwords for arg in argv), argv
    assert not any(p in final for p in passwords)
    for user in security.USERS:
        path = security.password_path(cfg, user)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text().count("\n") == 1

    # Kept across restarts, and no second setup start for the same cluster.
    argvs.clear()
    kafka.prepare(Progress(lambda _: None))
    assert argvs == []
    assert setup == ["creating the admin user"]
    assert [security.read_password(security.password_path(cfg, u)) for u in security.USERS] == (
        passwords
    )
    assert kafka.extra_env() == {
        "PLANTMESH_KAFKA_USERNAME": "admin",
        "PLANTMESH_KAFKA_PASSWORD_FILE": str(security.password_path(cfg, "admin")),
    }
    assert Kafka(cfg.with_insecure(True)).extra_env() == {}
