"""`plantmesh agent discover opcua` against the project's OPC UA simulator: the tree with node
ids, data types, values, units and status; root, depth and the node cap; security with a
client certificate and a user; and a picked fragment that the agent's OPC UA source streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.server.server import Server
from cryptography.x509.oid import ExtendedKeyUsageOID

from edge_agent.config import OpcUaSourceConfig, load_agent_config
from simulators import NetworkConfig, Simulation
from tests.support.agent_cli import agent_command
from tests.support.opcua import of, running_source, serving
from tests.support.ports import free_port
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

START = datetime(2026, 5, 4, 8, 0, 0, tzinfo=UTC)
PASSWORD = "s3cret-pw"
PRESS = "plant-x/stamping/line1/press-01"


def network(opcua: dict[str, Any]) -> NetworkConfig:
    machine = {"id": "press-01", "area": "stamping", "line": "line1", "class": "hydraulic_press",
               "protocol": "opcua"}  # fmt: skip
    return NetworkConfig.model_validate(
        {"seed": 3, "plants": [{"id": "plant-x", "opcua": opcua, "machines": [machine]}]}
    )


@pytest.fixture
async def sim() -> AsyncIterator[Simulation]:
    simulation = Simulation(network({"port": 0}), start=START)
    async with simulation.serving():
        await simulation.step()
        yield simulation


def url(sim: Simulation) -> str:
    endpoint = sim.endpoints()["plant-x"].opcua_url
    assert endpoint is not None
    return endpoint


def served(sim: Simulation, signal: str) -> float:
    return next(
        float(r.value) for r in reversed(sim.records) if r.series_key == f"{PRESS}/{signal}"
    )


def line_of(out: str, node_id: str) -> str:
    return next(line for line in out.splitlines() if f"  {node_id}  " in line)


async def test_tree_shows_node_ids_types_values_units_and_status(sim: Simulation) -> None:
    code, out, err = await agent_command("discover", "opcua", url(sim))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Objects  i=85  [Object]"
    assert "  Server  i=2253  [Object]  (standard node, not walked: --standard)" in lines
    assert line_of(out, f"ns=2;s={PRESS}").startswith("        press-01  ")
    temp = line_of(out, f"ns=2;s={PRESS}/bearing_temp")
    assert temp == (
        f"          bearing_temp  ns=2;s={PRESS}/bearing_temp  "
        f"Double = {served(sim, 'bearing_temp'):.6g} degC  (Good)"
    )
    assert lines[-1].endswith(", 10 variables")
    assert "EngineeringUnits" not in out  # properties describe a variable, they are not signals


async def test_root_depth_and_the_node_cap(sim: Simulation) -> None:
    code, out, err = await agent_command(
        "discover", "opcua", url(sim), "--root", "plant-x/stamping", "--depth", "1"
    )
    assert code == 0, err
    assert out.splitlines() == [
        "stamping  ns=2;s=plant-x/stamping  [Object]",
        "  line1  ns=2;s=plant-x/stamping/line1  [Object]",
        "2 nodes, 0 variables",
    ]
    code, out, err = await agent_command(
        "discover", "opcua", url(sim), "--root", f"ns=2;s={PRESS}", "--max-nodes", "4"
    )
    assert code == 0, err
    assert out.splitlines()[-1] == "4 nodes, 3 variables (stopped at --max-nodes 4)"
    assert "discover: stopped at 4 nodes (--max-nodes): the tree shown is incomplete" in err
    code, out, err = await agent_command("discover", "opcua", url(sim), "--root", "plant-x/nowhere")
    assert code == 1
    assert "plant-x has no child named 'nowhere'" in err


async def test_picked_variables_become_a_fragment_the_agent_streams(
    sim: Simulation, tmp_path: Path
) -> None:
    fragment = tmp_path / "fragment.yaml"
    code, out, err = await agent_command(
        "discover", "opcua", url(sim),
        "--pick", f"ns=2;s={PRESS}/bearing_temp", "--pick", f"{PRESS}/pressure",
        "--name", "press-plc", "--output", str(fragment),
    )  # fmt: skip
    assert code == 0, err
    assert f"discover: wrote {fragment}" in err
    assert "bearing_temp" in out  # the tree is still printed
    agent_file = tmp_path / "agent.yaml"
    agent_file.write_text("gateway_id: gw-x\nplant: plant-x\n" + fragment.read_text())
    source = load_agent_config(agent_file).sources[0]
    assert isinstance(source, OpcUaSourceConfig)
    assert [(n.node_id, n.machine, n.signal, n.unit) for n in source.nodes] == [
        (f"nsu=urn:plantmesh:sim;s={PRESS}/bearing_temp", "press-01", "bearing_temp", "degC"),
        (f"nsu=urn:plantmesh:sim;s={PRESS}/pressure", "press-01", "pressure", "bar"),
    ]
    entry = yaml.safe_load(fragment.read_text())["sources"][0]
    async with running_source(entry, plant="plant-x") as (_, readings):

        async def streamed() -> bool:
            return bool(of(readings, "press-01/bearing_temp") and of(readings, "press-01/pressure"))

        await async_wait_for(streamed, 20, "readings of the picked variables")
    temp = of(readings, "press-01/bearing_temp")[0]
    assert (temp.asset.area, temp.asset.line, temp.unit) == ("stamping", "line1", "degC")
    assert temp.value == served(sim, "bearing_temp")


async def client_certificate(tmp_path: Path) -> tuple[Path, Path]:
    key, cert = tmp_path / "client-key.pem", tmp_path / "client-cert.der"
    await setup_self_signed_certificate(
        key, cert, "urn:plantmesh:test:discover", "localhost",
        [ExtendedKeyUsageOID.CLIENT_AUTH], {"commonName": "plantmesh discover test"},
    )  # fmt: skip
    return cert, key


async def test_secure_server_with_certificate_and_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opcua = {"port": 0, "security": ["sign_and_encrypt"], "anonymous": False,
             "users": {"operator": PASSWORD}, "certificate_dir": str(tmp_path / "server")}  # fmt: skip
    cert, key = await client_certificate(tmp_path)
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    simulation = Simulation(network(opcua), start=START)
    async with simulation.serving():
        await simulation.step()
        secure = (
            "--security-policy", "Basic256Sha256", "--security-mode", "SignAndEncrypt",
            "--certificate", str(cert), "--private-key", str(key), "--username", "operator",
        )  # fmt: skip
        code, out, err = await agent_command(
            "discover", "opcua", url(simulation), *secure, "--password-file", str(password_file),
            "--root", PRESS, "--pick", f"{PRESS}/speed", "--output", str(tmp_path / "f.yaml"),
        )  # fmt: skip
        assert code == 0, err
        assert f"Double = {served(simulation, 'speed'):.6g} spm  (Good)" in line_of(
            out, f"ns=2;s={PRESS}/speed"
        )
        written = yaml.safe_load((tmp_path / "f.yaml").read_text())["sources"][0]
        assert written["security"] == {
            "policy": "Basic256Sha256",
            "mode": "SignAndEncrypt",
            "certificate": str(cert),
            "private_key": str(key),
        }
        assert (written["username"], written["password"]) == ("operator", "${OPCUA_PASSWORD}")

        # the same through an agent config, its password from the environment
        agent_file = tmp_path / "agent.yaml"
        agent_file.write_text("gateway_id: gw-x\nplant: plant-x\n" + yaml.safe_dump(
            {"sources": [written]}))  # fmt: skip
        monkeypatch.setenv("OPCUA_PASSWORD", PASSWORD)
        code, out, err = await agent_command(
            "discover", "opcua", "--config", str(agent_file), "--root", PRESS, "--depth", "1"
        )
        assert code == 0, err
        assert out.splitlines()[-1] == "11 nodes, 10 variables"

        password_file.write_text("wrong\n")
        code, out, err = await agent_command(
            "discover", "opcua", url(simulation), *secure, "--password-file", str(password_file)
        )
        assert code == 1
        assert out == ""
        assert err.startswith(f"discover: {url(simulation)}: ")
        assert "BadUserAccessDenied" in err or "BadIdentityTokenRejected" in err


async def test_a_large_server_shows_progress_and_the_cap() -> None:
    server = Server()
    await server.init()
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/big"
    server.set_endpoint(endpoint)
    idx = await server.register_namespace("urn:plantmesh:test:big")
    folder = await server.nodes.objects.add_folder(idx, "Big")
    for i in range(1500):
        await folder.add_variable(idx, f"v{i}", float(i))
    async with serving(server):
        code, out, err = await agent_command(
            "discover", "opcua", endpoint, "--root", "Big", "--max-nodes", "1200"
        )
    assert code == 0, err
    assert "discover: 1200 nodes browsed..." in err.splitlines()
    assert out.splitlines()[-1] == "1200 nodes, 1199 variables (stopped at --max-nodes 1200)"
    assert "  v1198  ns=2;i=" in out
    assert "  v1199  " not in out


async def test_unreachable_server_fails_with_the_endpoint() -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    code, out, err = await agent_command("discover", "opcua", endpoint, "--timeout", "1")
    assert code == 1
    assert out == ""
    assert err.startswith(f"discover: {endpoint}: ")
