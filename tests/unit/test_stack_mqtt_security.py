"""The secured MQTT listener's pure parts: its config, the ACL, the credential store, the
certificates and the `password_file` setting."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from edge_agent.config import MqttSettings
from plantmesh.connections import MqttConnection
from plantmesh.gateways import agent_snippet
from plantmesh.stack import manager
from plantmesh.stack.credentials import (
    BRIDGE_USER,
    CredentialError,
    CredentialStore,
    Gateway,
    read_password_file,
    render_acl,
)
from plantmesh.stack.errors import StackError
from plantmesh.stack.mosquitto import Mosquitto, TlsListener, render_config
from plantmesh.stack.mqtt_probe import connect_packet
from plantmesh.stack.paths import Ports, StackConfig
from plantmesh.stack.tls import ensure_certificates


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _listener(tmp_path: Path) -> TlsListener:
    return TlsListener(
        port=31884,
        ca_file=tmp_path / "ca.pem",
        cert_file=tmp_path / "server.pem",
        key_file=tmp_path / "server.key",
        password_file=tmp_path / "passwd",
        acl_file=tmp_path / "acl",
    )


def test_config_adds_a_tls_listener_for_known_users_only(tmp_path: Path) -> None:
    text = render_config(31883, tmp_path / "d", tmp_path / "m.log", "me", _listener(tmp_path))
    lines = text.splitlines()
    assert lines[1] == "per_listener_settings true"  # before any listener
    plain, tls = lines.index("listener 31883 127.0.0.1"), lines.index("listener 31884 127.0.0.1")
    # Per-listener settings follow their listener: anonymous stays allowed on the plain one.
    assert lines[plain + 1] == "allow_anonymous true"
    tls_part = lines[tls:]
    for expected in [
        f"cafile {tmp_path / 'ca.pem'}",
        f"certfile {tmp_path / 'server.pem'}",
        f"keyfile {tmp_path / 'server.key'}",
        "allow_anonymous false",
        f"password_file {tmp_path / 'passwd'}",
        f"acl_file {tmp_path / 'acl'}",
    ]:
        assert expected in tls_part
    assert "allow_anonymous true" not in tls_part


def test_config_without_tls_is_the_plain_listener_alone(tmp_path: Path) -> None:
    text = render_config(31883, tmp_path / "d", tmp_path / "m.log", "me")
    assert "per_listener_settings false" in text.splitlines()
    assert "password_file" not in text
    assert "acl_file" not in text


def test_tls_port_follows_the_mqtt_port_unless_set() -> None:
    assert Ports(mqtt=31883).mqtt_tls == 31884
    assert Ports(mqtt=31883, mqtts=38883).mqtt_tls == 38883
    env = {"PLANTMESH_CACHE": "/tmp/x", "PLANTMESH_STACK_MQTT_PORT": "31883"}
    assert StackConfig.from_env(env).ports.mqtt_tls == 31884
    env["PLANTMESH_STACK_MQTTS_PORT"] = "38883"
    assert StackConfig.from_env(env).ports.mqtt_tls == 38883
    with pytest.raises(StackError, match="PLANTMESH_STACK_MQTTS_PORT"):
        StackConfig.from_env({**env, "PLANTMESH_STACK_MQTTS_PORT": "tls"})


def test_stack_env_names_the_tls_url_and_the_ca(tmp_path: Path) -> None:
    cfg = StackConfig(cache=tmp_path, state=tmp_path / "s", ports=Ports(mqtt=31883))
    assert manager.env(cfg, only=["mosquitto"]) == {"PLANTMESH_MQTT_URL": "mqtt://127.0.0.1:31883"}
    env = manager.extra_env(cfg)
    assert env["PLANTMESH_MQTTS_URL"] == "mqtts://127.0.0.1:31884"
    assert env["PLANTMESH_MQTT_CA_FILE"] == str(tmp_path / "s/mosquitto/security/tls/ca.pem")
    assert Mosquitto(cfg).ports == [31883, 31884]


def test_acl_gateways_write_their_own_topics_and_the_bridge_only_reads() -> None:
    text = render_acl([Gateway("gw-b", "plant-b", "ns1"), Gateway("gw-a", "plant-a")])
    blocks = {b.splitlines()[0]: b.splitlines()[1:] for b in text.split("\n\n")[1:] if b}
    assert blocks["user bridge"] == [
        "topic read plantmesh/v1/+/+/+/+/readings",
        "topic read plantmesh/v1/+/_gateway/+/status",
        "topic read +/plantmesh/v1/+/+/+/+/readings",
        "topic read +/plantmesh/v1/+/_gateway/+/status",
    ]
    assert blocks["user gw-a"] == [
        "topic write plantmesh/v1/plant-a/+/+/+/readings",
        "topic write plantmesh/v1/plant-a/_gateway/gw-a/status",
    ]
    assert blocks["user gw-b"] == [
        "topic write ns1/plantmesh/v1/plant-b/+/+/+/readings",
        "topic write ns1/plantmesh/v1/plant-b/_gateway/gw-b/status",
    ]
    # No `pattern` lines (they apply to every user) and no rule for anonymous clients.
    rules = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert all(line.startswith(("user ", "topic ")) for line in rules)
    assert rules[0].startswith("user ")


@pytest.mark.parametrize(
    ("name", "plant", "namespace"),
    [("gw/a", "p", ""), ("gw", "p#", ""), ("gw", "p", "a/b"), ("bridge", "p", ""), ("", "p", "")],
)
def test_names_that_would_widen_a_topic_rule_are_refused(
    name: str, plant: str, namespace: str
) -> None:
    with pytest.raises(CredentialError):
        Gateway(name, plant, namespace)


def test_store_issues_random_private_passwords_and_revokes_them(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "sec")
    first = store.add_gateway(Gateway("gw-a", "plant-a"))
    second = store.add_gateway(Gateway("gw-b", "plant-a"), password="given secret")
    assert _mode(first) == 0o600
    assert _mode(second) == 0o600
    assert _mode(first.parent) == 0o700
    assert len(store.password("gw-a")) >= 30
    assert store.password("gw-b") == "given secret"
    with pytest.raises(CredentialError, match="exists"):
        store.add_gateway(Gateway("gw-a", "plant-b"))
    assert CredentialStore(tmp_path / "sec").gateways() == [
        Gateway("gw-a", "plant-a"),
        Gateway("gw-b", "plant-a"),
    ]
    assert store.remove_gateway("gw-a") == Gateway("gw-a", "plant-a")
    assert not first.exists()
    assert [g.name for g in store.gateways()] == ["gw-b"]
    with pytest.raises(CredentialError, match="no gateway"):
        store.remove_gateway("gw-a")


def test_password_file_takes_the_first_line(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("s3cret word\nignored\n")
    assert read_password_file(path) == "s3cret word"
    path.write_text("\n")
    with pytest.raises(CredentialError):
        read_password_file(path)
    with pytest.raises(CredentialError, match="cannot read"):
        read_password_file(tmp_path / "missing")


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="needs mosquitto_passwd")
def test_broker_files_hold_hashes_only(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "sec")
    store.add_gateway(Gateway("gw-a", "plant-a"), password="plain-text-secret")
    store.write_broker_files(shutil.which("mosquitto_passwd") or "")
    passwd = store.passwd_path.read_text()
    assert sorted(line.split(":")[0] for line in passwd.splitlines()) == [BRIDGE_USER, "gw-a"]
    assert "plain-text-secret" not in passwd
    assert all(line.split(":", 1)[1].startswith("$7$") for line in passwd.splitlines())
    assert _mode(store.passwd_path) == 0o600
    assert _mode(store.password_file(BRIDGE_USER)) == 0o600
    assert "user gw-a" in store.acl_path.read_text()
    bridge = store.password(BRIDGE_USER)
    store.write_broker_files(shutil.which("mosquitto_passwd") or "")
    assert store.password(BRIDGE_USER) == bridge  # made once, kept


def test_certificates_are_made_once_and_verify(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path / "tls")
    assert _mode(files.ca_key) == 0o600
    assert _mode(files.server_key) == 0o600
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    before = {p.name: p.read_bytes() for p in files.dir.iterdir()}
    ensure_certificates(tmp_path / "tls")
    assert {p.name: p.read_bytes() for p in files.dir.iterdir()} == before
    files.server_cert.unlink()  # a lost server certificate is made again by the same CA
    ensure_certificates(tmp_path / "tls")
    assert files.ca_cert.read_bytes() == before["ca.pem"]
    x509.load_pem_x509_certificate(files.server_cert.read_bytes()).verify_directly_issued_by(ca)


def test_connect_packet_encodes_long_credentials() -> None:
    packet = connect_packet("c", "user", "p" * 200)
    assert packet[0] == 0x10
    # Remaining length over 127 takes two bytes (MQTT's variable-length integer).
    length = (packet[1] & 0x7F) + (packet[2] << 7)
    assert packet[1] & 0x80
    assert length == len(packet) - 3
    assert packet[3:13] == b"\x00\x04MQTT\x04\xc2\x00\x0a"  # user + password + clean session


def test_password_file_is_read_at_connect_time(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("one\n")
    conn = MqttConnection(url="mqtts://127.0.0.1:1", username="gw", password_file=path)
    assert conn.password_value() == "one"
    path.write_text("two\n")
    assert conn.password_value() == "two"
    path.unlink()
    with pytest.raises(ValueError, match="password_file"):
        conn.password_value()
    assert MqttConnection(username="u", password="x").password_value() == "x"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fields",
    [{"username": "u", "password": "x", "password_file": "/p"}, {"password_file": "/p"}],
)
def test_password_file_excludes_password_and_needs_a_user(fields: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="password"):
        MqttConnection.model_validate(fields)


def test_agent_snippet_is_valid_agent_mqtt_settings(tmp_path: Path) -> None:
    cfg = StackConfig(cache=tmp_path, state=tmp_path / "s", ports=Ports(mqtt=31883))
    broker = Mosquitto(cfg)
    snippet = yaml.safe_load(agent_snippet(broker, Gateway("gw-a", "plant-a", "ns")))
    assert (snippet["gateway_id"], snippet["plant"], snippet["namespace"]) == (
        "gw-a",
        "plant-a",
        "ns",
    )
    settings = MqttSettings.model_validate(snippet["mqtt"])
    assert settings.tls
    assert settings.port == 31884
    assert settings.username == "gw-a"
    assert settings.password_file == broker.credentials.password_file("gw-a")
    assert settings.ca_file == str(broker.ca_file)
