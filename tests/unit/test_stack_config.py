"""The local stack's pure parts: where it lives, its ports, and the config files it writes."""

from __future__ import annotations

import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from plantmesh.connections import InfluxConnection, KafkaConnection, MqttConnection
from plantmesh.stack import manager
from plantmesh.stack.errors import StackError
from plantmesh.stack.influxdb import render_config as render_influx
from plantmesh.stack.kafka import render_log4j2, render_pom, render_server_properties
from plantmesh.stack.mosquitto import render_config as render_mosquitto
from plantmesh.stack.paths import Ports, StackConfig


def _properties(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_cache_and_state_default_outside_the_repository(tmp_path: Path) -> None:
    cfg = StackConfig.from_env({"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert cfg.cache == tmp_path / "xdg" / "plantmesh"
    assert cfg.state == cfg.cache / "state"
    assert cfg.ports == Ports(mqtt=11883, kafka=19092, influx=18086, postgres=15432)


def test_environment_moves_cache_state_and_ports(tmp_path: Path) -> None:
    cfg = StackConfig.from_env(
        {
            "PLANTMESH_CACHE": str(tmp_path / "c"),
            "PLANTMESH_STATE": str(tmp_path / "s"),
            "PLANTMESH_STACK_MQTT_PORT": "31883",
            "PLANTMESH_STACK_KAFKA_PORT": "39092",
            "PLANTMESH_STACK_INFLUX_PORT": "38086",
            "PLANTMESH_STACK_POSTGRES_PORT": "35432",
        }
    )
    assert cfg.ports.postgres == 35432
    assert (cfg.cache, cfg.state) == (tmp_path / "c", tmp_path / "s")
    assert (cfg.ports.kafka_controller, cfg.ports.influx_rpc) == (39093, 38088)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PLANTMESH_STACK_MQTT_PORT", "eleven"),
        ("PLANTMESH_STACK_KAFKA_PORT", "65535"),  # its controller would need 65536
        ("PLANTMESH_STACK_INFLUX_PORT", "0"),
    ],
)
def test_bad_port_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(StackError, match=name):
        StackConfig.from_env({"PLANTMESH_CACHE": "/tmp/x", name: value})


def test_mosquitto_config(tmp_path: Path) -> None:
    text = render_mosquitto(31883, tmp_path / "data", tmp_path / "m.log", "someone")
    lines = text.splitlines()
    for expected in [
        "listener 31883 127.0.0.1",
        "allow_anonymous true",
        "persistence true",
        f"persistence_location {tmp_path / 'data'}/",  # Mosquitto wants the trailing slash
        "max_inflight_messages 1000",
        "max_queued_messages 1000000",
        f"log_dest file {tmp_path / 'm.log'}",
        "user someone",
    ]:
        assert expected in lines
    assert not any(line.startswith("listener") and "0.0.0.0" in line for line in lines)


def test_kafka_single_node_kraft_properties(tmp_path: Path) -> None:
    # `--insecure`; the secured mode's lines: tests/unit/test_stack_kafka_security.py
    insecure = render_server_properties(Ports(kafka=39092), tmp_path / "data", secure=False)
    props = _properties(insecure)
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:39093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:39092,CONTROLLER://127.0.0.1:39093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:39092"
    assert props["log.dirs"] == str(tmp_path / "data")
    for key in [
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
    ]:
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["num.partitions"] == "4"
    assert props["auto.create.topics.enable"] == "true"


def test_kafka_logs_info_to_a_file(tmp_path: Path) -> None:
    props = _properties(render_log4j2(tmp_path / "kafka.log").replace(" = ", "="))
    assert props["appender.file.fileName"] == str(tmp_path / "kafka.log")
    assert props["rootLogger.level"] == "INFO"
    assert props["rootLogger.appenderRef.file.ref"] == props["appender.file.name"]


def test_kafka_pom_adds_the_logging_binding() -> None:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.fromstring(render_pom())
    deps = [
        tuple(d.findtext(f"m:{tag}", namespaces=ns) for tag in ("groupId", "artifactId", "version"))
        for d in root.iterfind("m:dependencies/m:dependency", ns)
    ]
    assert deps == [
        ("org.apache.kafka", "kafka_2.13", "4.1.1"),
        ("org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3"),
    ]


def test_influxdb_config_is_valid_toml_with_flux_on_loopback(tmp_path: Path) -> None:
    state = tmp_path / 'odd "dir"'  # quoting must survive unusual paths
    conf = tomllib.loads(render_influx(Ports(influx=38086), state))
    assert conf["reporting-disabled"] is True
    assert conf["bind-address"] == "127.0.0.1:38088"
    assert conf["http"]["bind-address"] == "127.0.0.1:38086"
    assert conf["http"]["flux-enabled"] is True
    assert conf["http"]["log-enabled"] is False
    assert conf["meta"]["dir"] == str(state / "meta")
    assert conf["data"]["dir"] == str(state / "data")
    assert conf["data"]["wal-dir"] == str(state / "wal")
    assert conf["data"]["query-log-enabled"] is False
    assert conf["monitor"]["store-enabled"] is False


def test_env_is_what_connections_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = StackConfig(cache=tmp_path, state=tmp_path / "s", ports=Ports(31883, 39092, 38086))
    variables = manager.env(cfg)
    assert variables == {
        "PLANTMESH_MQTT_URL": "mqtts://127.0.0.1:31884",
        "PLANTMESH_KAFKA_BOOTSTRAP": "127.0.0.1:39092",
        "PLANTMESH_INFLUX_URL": "http://127.0.0.1:38086",
        "PLANTMESH_DATABASE_URL": variables["PLANTMESH_DATABASE_URL"],
    }
    assert variables["PLANTMESH_DATABASE_URL"].startswith("postgresql://plantmesh:")
    assert variables["PLANTMESH_DATABASE_URL"].endswith("@127.0.0.1:15432/plantmesh")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert (MqttConnection().host, MqttConnection().port) == ("127.0.0.1", 31884)
    assert KafkaConnection().bootstrap == "127.0.0.1:39092"
    assert InfluxConnection().url == "http://127.0.0.1:38086"


def test_each_server_recognises_its_own_command_line_only(tmp_path: Path) -> None:
    ours = StackConfig(cache=tmp_path / "c", state=tmp_path / "a")
    other = StackConfig(cache=tmp_path / "c", state=tmp_path / "b")
    for mine, theirs in zip(manager.servers(ours), manager.servers(other), strict=True):
        assert mine.identity.matches(_executed(mine.command())), mine.name
        assert not mine.identity.matches(_executed(theirs.command())), mine.name


def _executed(argv: list[str]) -> list[str]:
    """The command line the process has once `setpriv` (PostgreSQL as root) exec'd it."""
    return argv[argv.index("--") + 1 :] if argv[0] == "setpriv" else argv


def test_server_names_and_aliases() -> None:
    assert [s.name for s in manager.servers(StackConfig.from_env(), ["influx", "mqtt"])] == [
        "mosquitto",
        "influxdb",
    ]
    with pytest.raises(StackError, match="unknown server 'redis'"):
        manager.servers(StackConfig.from_env(), ["redis"])
