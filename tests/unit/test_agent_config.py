from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.cli import summary
from edge_agent.config import (
    AgentConfig,
    BufferConfig,
    ModbusSourceConfig,
    OpcUaSourceConfig,
    load_agent_config,
)
from plantmesh.config import ConfigError

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "deploy" / "agent" / "sample.yaml"

PROFILE = """
name: small_pump
registers:
  - {signal: flow, table: input, address: 0, type: float32, unit: m3/h}
  - {signal: running, table: coil, address: 0, type: bool}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def modbus_config(profile: str) -> str:
    return f"""
gateway_id: gw-1
plant: plant-a
sources:
  - type: modbus
    name: mb
    host: 127.0.0.1
    devices:
      - {{unit_id: 3, profile: {profile}, area: utilities, line: line1, machine: pump-01}}
"""


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_agent_config(path)
    assert info.value.path == str(path)
    return info.value.problems


def test_sample_config_loads_with_every_source_type() -> None:
    config = load_agent_config(SAMPLE)
    assert config.gateway_id == "gw-plant-a"
    opc, modbus = config.sources
    assert isinstance(opc, OpcUaSourceConfig)
    assert [b.path for b in opc.browse] == [["plant-a"]]
    assert isinstance(modbus, ModbusSourceConfig)
    device = modbus.devices[0]
    assert device.on_change
    assert device.device_profile.name == "centrifugal_pump"
    assert "unit 1 utilities/line1/pump-01: centrifugal_pump" in summary(config)


def test_profile_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    write(tmp_path / "profiles" / "pump.yaml", PROFILE)
    config_file = write(tmp_path / "agents" / "gw.yaml", modbus_config("../profiles/pump.yaml"))
    config = load_agent_config(config_file)
    source = config.sources[0]
    assert isinstance(source, ModbusSourceConfig)
    assert source.devices[0].device_profile.name == "small_pump"
    assert config.publish_interval_s == 0.5  # defaults from the documented schema
    assert config.buffer == BufferConfig()


def test_missing_profile_names_the_key_and_the_file(tmp_path: Path) -> None:
    config_file = write(tmp_path / "gw.yaml", modbus_config("nope.yaml"))
    [problem] = problems_of(config_file)
    assert problem.startswith("sources[0].devices[0].profile:")
    assert str(tmp_path / "nope.yaml") in problem


def test_invalid_profile_reports_the_profile_problem(tmp_path: Path) -> None:
    write(tmp_path / "bad.yaml", "name: p\nregisters: []\n")
    [problem] = problems_of(write(tmp_path / "gw.yaml", modbus_config("bad.yaml")))
    assert "sources[0].devices[0].profile" in problem
    assert "registers" in problem


@pytest.mark.parametrize(
    ("source", "key", "expectation"),
    [
        (
            "{type: opcua, name: o, endpoint: 'http://h:1', browse: [{root: a}]}",
            "endpoint",
            "opc.tcp://",
        ),
        ("{type: opcua, name: o, endpoint: 'opc.tcp://h:1'}", "sources[0]:", "at least one"),
        (
            "{type: opcua, name: o, endpoint: 'opc.tcp://h:1', nodes: [{node_id: 'x', area: a, line: l, machine: m, signal: s}]}",
            "node_id",
            "OPC UA node id",
        ),
        ("{type: s7, name: o}", "sources[0]", "'opcua', 'modbus'"),
        (
            "{type: modbus, name: m, host: h, devices: [{unit_id: 1, profile: p.yaml, area: a, line: l, machine: m, pol_interval_s: 1}]}",
            "pol_interval_s",
            "unknown key",
        ),
        (
            "{type: modbus, name: m, host: h, port: 70000, devices: []}",
            "port",
            "less than or equal",
        ),
        (
            "{type: modbus, name: 'bad name', host: h, devices: [{unit_id: 1, profile: p.yaml, area: a, line: l, machine: m}]}",
            "name",
            "pattern",
        ),
    ],
)
def test_errors_name_key_and_expectation(
    tmp_path: Path, source: str, key: str, expectation: str
) -> None:
    path = write(tmp_path / "gw.yaml", f"gateway_id: g\nplant: p\nsources:\n  - {source}\n")
    problems = problems_of(path)
    assert any(key in p and expectation in p for p in problems), problems


def test_top_level_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path / "gw.yaml",
        "gateway_id: g\nnamespace: 'a/b'\npublish_interval_s: 0\nsources: []\n",
    )
    problems = problems_of(path)
    assert "plant: required key is missing" in problems
    assert any(p.startswith("namespace:") for p in problems)
    assert any(p.startswith("publish_interval_s:") and "greater than 0" in p for p in problems)
    assert any(p.startswith("sources:") for p in problems)


def test_source_names_must_be_unique() -> None:
    source = {"type": "opcua", "name": "o", "endpoint": "opc.tcp://h:1", "browse": [{"root": "a"}]}
    with pytest.raises(ValueError, match="used twice"):
        AgentConfig.model_validate({"gateway_id": "g", "plant": "p", "sources": [source, source]})


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_config_cli_exit_codes(tmp_path: Path) -> None:
    good = _cli("check-config", "--config", str(SAMPLE))
    assert good.returncode == 0, good.stderr
    assert "gateway gw-plant-a (plant plant-a)" in good.stdout
    bad_file = write(tmp_path / "gw.yaml", "gateway_id: g\nplant: p\nsourcez: []\n")
    bad = _cli("check-config", "--config", str(bad_file))
    assert bad.returncode == 2
    assert str(bad_file) in bad.stderr
    assert "sourcez: unknown key" in bad.stderr
    assert "sources: required key is missing" in bad.stderr


OPC = "type: opcua, name: o, endpoint: 'opc.tcp://h:1'"
NODE = "area: a, line: l, machine: m, signal: s"


@pytest.mark.parametrize(
    ("source", "key", "expectation"),
    [
        (f"{{{OPC}, nodes: [{{{NODE}}}]}}", "nodes[0]", "exactly one of `node_id` and"),
        (
            f"{{{OPC}, nodes: [{{node_id: 'ns=1;i=5', browse_path: a/b, {NODE}}}]}}",
            "nodes[0]",
            "exactly one",
        ),
        (f"{{{OPC}, nodes: [{{node_id: 'nsu=urn:x;q=5', {NODE}}}]}}", "node_id", "nsu=urn:x"),
        (
            f"{{{OPC}, browse: [{{root: a, deadband: {{type: percent, value: 150}}}}]}}",
            "deadband",
            "between 0 and 100",
        ),
        (f"{{{OPC}, browse: [{{root: a, mode: push}}]}}", "mode", "'subscribe' or 'poll'"),
        (
            f"{{{OPC}, browse: [{{root: a}}], security: {{policy: Basic256Sha256}}}}",
            "security",
            "needs `certificate` and `private_key`",
        ),
        (
            f"{{{OPC}, browse: [{{root: a}}], security: {{policy: Basic128Rsa15}}}}",
            "policy",
            "'None' or 'Basic256Sha256'",
        ),
        (f"{{{OPC}, browse: [{{root: a}}], password: x}}", "sources[0]", "needs `username`"),
        (f"{{{OPC}, browse: [{{root: a}}], keepalive_timeout_s: 0.5}}", "keepalive", "1"),
    ],
)
def test_opcua_option_errors(tmp_path: Path, source: str, key: str, expectation: str) -> None:
    path = write(tmp_path / "gw.yaml", f"gateway_id: g\nplant: p\nsources:\n  - {source}\n")
    problems = problems_of(path)
    assert any(key in p and expectation in p for p in problems), problems


def test_sample_documents_the_opcua_options() -> None:
    config = load_agent_config(SAMPLE)
    opc = config.sources[0]
    assert isinstance(opc, OpcUaSourceConfig)
    by_uri, by_path = opc.nodes
    assert by_uri.node_id is not None
    assert by_uri.node_id.startswith("nsu=")
    assert by_uri.deadband is not None
    assert by_uri.deadband.type == "absolute"
    assert by_path.browse_path == "Utilities/boiler-01/total_steam"
    assert by_path.mode == "poll"
    assert opc.security.policy == "None"
    assert opc.keepalive_timeout_s == 10
    text = SAMPLE.read_text()
    for key in ("Basic256Sha256", "SignAndEncrypt", "private_key:", "password:", "percent"):
        assert key in text


def test_opcua_certificate_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    security = (
        "{policy: Basic256Sha256, mode: Sign, certificate: certs/client.der, "
        "private_key: ../keys/client.pem, server_certificate: /etc/pki/server.der}"
    )
    source = f"{{{OPC}, browse: [{{root: a, mode: poll}}], security: {security}}}"
    path = write(
        tmp_path / "agents" / "gw.yaml", f"gateway_id: g\nplant: p\nsources:\n  - {source}\n"
    )
    config = load_agent_config(path)
    [opc] = config.sources
    assert isinstance(opc, OpcUaSourceConfig)
    assert opc.security.certificate == str(tmp_path / "agents" / "certs" / "client.der")
    assert opc.security.private_key is not None
    assert Path(opc.security.private_key).resolve() == (tmp_path / "keys" / "client.pem").resolve()
    assert opc.security.server_certificate == "/etc/pki/server.der"
    line = next(line for line in summary(config).splitlines() if "opcua" in line)
    assert line.endswith("browse [a] + 0 nodes, poll, security Basic256Sha256 Sign")


def test_check_config_shows_each_opcua_mode_and_security() -> None:
    config = load_agent_config(SAMPLE)
    line = next(line for line in summary(config).splitlines() if "opcua" in line)
    # The sample subscribes by default and polls one of its nodes.
    assert "subscribe (publishing 100 ms): 1 root + 1 node; poll: 1 node" in line
    assert line.endswith("security None")
