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
    ADMIN_USER,
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


def test_config_is_one_tls_listener_for_known_users_only(tmp_path: Path) -> None:
    text = render_config(31883, tmp_path / "d", tmp_path / "m.log", "me", _listener(tmp_path))
    lines = text.splitlines()
    assert [line for line in lines if line.startswith("listener ")] == ["listener 31884 127.0.0.1"]
    for expected in [
        f"cafile {tmp_path / 'ca.pem'}",
        f"certfile {tmp_path / 'server.pem'}",
        f"keyfile {tmp_path / 'server.key'}",
        "allow_anonymous false",
        f"password_file {tmp_path / 'passwd'}",
        f"acl_file {tmp_path / 'acl'}",
    ]:
        assert expected in lines
    assert "allow_anonymous true" not in lines


def test_insecure_config_is_the_plain_anonymous_listener_alone(tmp_path: Path) -> None:
    lines = render_config(31883, tmp_path / "d", tmp_path / "m.log", "me").splitlines()
    assert [line for line in lines if line.startswith("listener ")] == ["listener 31883 127.0.0.1"]
    assert "allow_anonymous true" in lines
    assert not [line for line in lines if line.startswith(("password_file", "acl_file", "cafile"))]


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
    url = {"PLANTMESH_MQTT_URL": "mqtts://127.0.0.1:31884"}
    assert manager.env(cfg, only=["mosquitto"]) == url
    env = manager.extra_env(cfg, only=["mosquitto"])
    security = tmp_path / "s/mosquitto/security"
    assert env == {
        "PLANTMESH_MQTTS_URL": "mqtts://127.0.0.1:31884",
        "PLANTMESH_MQTT_CA_FILE": str(security / "tls/ca.pem"),
        "PLANTMESH_MQTT_USERNAME": "admin",
        "PLANTMESH_MQTT_PASSWORD_FILE": str(security / "credentials/admin.password"),
        "PLANTMESH_MQTT_GATEWAYS_FILE": str(security / "gateways.json"),
    }
    assert Mosquitto(cfg).ports == [31884]
    insecure = StackConfig(cfg.cache, cfg.state, cfg.ports, insecure=True)
    assert manager.env(insecure, only=["mosquitto"]) == {
        "PLANTMESH_MQTT_URL": "mqtt://127.0.0.1:31883"
    }
    assert manager.extra_env(insecure, only=["mosquitto"]) == {}
    assert Mosquitto(insecure).ports == [31883]


def test_acl_gateways_write_their_own_topics_and_the_bridge_only_reads() -> None:
    text = render_acl([Gateway("gw-b", "plant-b", "ns1"), Gateway("gw-a", "plant-a")])
    blocks = {b.splitlines()[0]: b.splitlines()[1:] for b in text.split("\n\n")[1:] if b}
    assert blocks["user bridge"] == [
        "topic read plantmesh/v1/+/+/+/+/readings",
        "topic read plantmesh/v1/+/_gateway/+/status",
        "topic read +/plantmesh/v1/+/+/+/+/readings",
        "topic read +/plantmesh/v1/+/_gateway/+/status",
    ]
    assert blocks["user admin"] == ["topic readwrite #"]  # the operator, never a gateway
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
    users = sorted(line.split(":")[0] for line in passwd.splitlines())
    assert users == [ADMIN_USER, BRIDGE_USER, "gw-a"]
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


def test_sections_without_a_user_take_the_stack_operator_on_loopback_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "admin.password"
    secret.write_text("operator-secret\n")
    monkeypatch.setenv("PLANTMESH_MQTT_URL", "mqtts://127.0.0.1:31884")
    monkeypatch.setenv("PLANTMESH_MQTT_USERNAME", "admin")
    monkeypatch.setenv("PLANTMESH_MQTT_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("PLANTMESH_MQTT_CA_FILE", "/stack/ca.pem")
    default = MqttConnection()
    assert (default.username, default.password_value(), default.ca_file) == (
        "admin",
        "operator-secret",
        "/stack/ca.pem",
    )
    proxy = MqttConnection(url="mqtts://localhost:40000")  # still ours: loopback
    assert proxy.username == "admin"
    # A section naming its own user keeps it, and never gets the operator's password file.
    own = MqttConnection(username="gw-a", password="x")  # type: ignore[arg-type]
    assert (own.username, own.password_file) == ("gw-a", None)
    # Another broker never gets the local stack's secrets or CA.
    remote = MqttConnection(url="mqtts://broker.plant-a.example:8883")
    assert (remote.username, remote.password_file, remote.ca_file) == (None, None, None)


def test_password_files_are_relative_to_the_config_file(tmp_path: Path) -> None:
    from edge_agent.config import load_agent_config
    from ingest.config import load_ingest_config

    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "gw.password").write_text("gateway-secret\n")
    mqtt = "mqtt: {url: 'mqtts://broker.example:8883', username: gw, password_file: secrets/gw.password}"
    agent = tmp_path / "agent.yaml"
    source = "sources: [{type: opcua, name: o, endpoint: 'opc.tcp://127.0.0.1:4840', browse: [{root: plant-a}]}]"
    agent.write_text(f"gateway_id: gw\nplant: plant-a\n{mqtt}\n{source}\n")
    loaded = load_agent_config(agent)
    assert loaded.mqtt.password_file == tmp_path / "secrets" / "gw.password"
    assert loaded.mqtt.password_value() == "gateway-secret"
    ingest = tmp_path / "ingest.yaml"
    ingest.write_text(f"{mqtt}\nbridge: {{gateways: secrets/gateways.json}}\n")
    config = load_ingest_config(ingest)
    assert config.mqtt.password_value() == "gateway-secret"
    assert config.bridge.gateways == tmp_path / "secrets" / "gateways.json"


def test_gateway_add_never_overwrites_a_config_it_is_asked_to_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from plantmesh.cli import main

    monkeypatch.setenv("PLANTMESH_STATE", str(tmp_path / "state"))
    existing = tmp_path / "agent.yaml"
    existing.write_text("gateway_id: mine\n")
    assert main(["gateway", "add", "gw-9", "--plant", "p1", "--write-config", str(existing)]) == 1
    assert "exists; not overwritten" in capsys.readouterr().err
    assert existing.read_text() == "gateway_id: mine\n"
    assert not (tmp_path / "state").exists()  # refused before any credential was made
