"""`plantmesh agent check-config --connect` against the simulator's real OPC UA server (secure
channel, user login) and Modbus TCP server: good signals show their values, a node id that does not
exist, a register out of range, a wrong password and a port nobody listens on show their problem,
and the exit code says whether there was any."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography.x509.oid import ExtendedKeyUsageOID

from plantmesh.modbus_profile import load_profile
from simulators import NAMESPACE_URI, NetworkConfig, Simulation
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

PROFILES = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "profiles"
START = datetime(2026, 5, 4, 8, 0, 0, tzinfo=UTC)
PASSWORD = "s3cret-pw"
PRESS = "plant-k/stamping/line1/press-01"
PUMP_SIGNALS = {
    "speed", "motor_current", "state", "alarm_word", "energy", "bearing_temp", "vibration_rms",
    "pressure", "flow", "running",
}  # fmt: skip


def network(certificate_dir: Path) -> NetworkConfig:
    machines = [
        {"id": "press-01", "area": "stamping", "line": "line1", "class": "hydraulic_press",
         "protocol": "opcua"},
        {"id": "pump-01", "area": "stamping", "line": "line1", "class": "centrifugal_pump",
         "protocol": "modbus", "unit_id": 1,
         "profile": load_profile(PROFILES / "centrifugal_pump.yaml")},
    ]  # fmt: skip
    opcua = {
        "port": 0,
        "security": ["sign_and_encrypt"],
        "anonymous": False,
        "users": {"operator": PASSWORD},
        "certificate_dir": str(certificate_dir),
    }
    return NetworkConfig.model_validate(
        {"plants": [{"id": "plant-k", "opcua": opcua, "modbus": {"port": 0}, "machines": machines}]}
    )


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulation]:
    simulation = Simulation(network(tmp_path / "server-certs"), start=START)
    async with simulation.serving():
        yield simulation


async def client_certificate(tmp_path: Path) -> dict[str, str]:
    key, cert = tmp_path / "agent-key.pem", tmp_path / "agent-cert.der"
    await setup_self_signed_certificate(
        key, cert, "urn:plantmesh:test:agent", "localhost", [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"commonName": "plantmesh test agent"},
    )  # fmt: skip
    return {"policy": "Basic256Sha256", "mode": "SignAndEncrypt",
            "certificate": str(cert), "private_key": str(key)}  # fmt: skip


def node(signal: str, node_id: str) -> dict[str, str]:
    return {"node_id": node_id, "area": "stamping", "line": "line1", "machine": "press-01",
            "signal": signal}  # fmt: skip


def pump(unit_id: int, machine: str, profile: Any) -> dict[str, Any]:
    return {"unit_id": unit_id, "profile": profile, "area": "stamping", "line": "line1",
            "machine": machine}  # fmt: skip


FAR = {"name": "far", "registers": [{"signal": "far", "address": 9000, "type": "uint16"}]}


async def agent_config(sim: Simulation, tmp_path: Path, broken: bool) -> Path:
    endpoints = sim.endpoints()["plant-k"]
    security = await client_certificate(tmp_path)
    opc: dict[str, Any] = {
        "type": "opcua", "name": "opc", "endpoint": endpoints.opcua_url, "security": security,
        "username": "operator", "password": PASSWORD,
        "nodes": [node("pressure", f"nsu={NAMESPACE_URI};s={PRESS}/pressure")],
        "browse": [{"root": "plant-k"}],
    }  # fmt: skip
    modbus: dict[str, Any] = {
        "type": "modbus", "name": "mb", "host": "127.0.0.1", "port": endpoints.modbus_port,
        "devices": [pump(1, "pump-01", str(PROFILES / "centrifugal_pump.yaml"))],
    }  # fmt: skip
    sources = [opc, modbus]
    if broken:
        opc["nodes"].append(node("ghost", f"nsu={NAMESPACE_URI};s={PRESS}/no_such_signal"))
        modbus["devices"].append(pump(1, "pump-far", FAR))
        wrong = {**opc, "name": "opc-wrong", "password": "guess", "browse": []}
        down = {"type": "modbus", "name": "mb-down", "host": "127.0.0.1", "port": free_port(),
                "devices": [pump(1, "pump-09", FAR)]}  # fmt: skip
        sources += [wrong, down]
    config = {"gateway_id": "gw-k", "plant": "plant-k", "sources": sources}
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def check_config(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge_agent", "check-config", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def table(out: str) -> list[dict[str, str]]:
    """The rows of the printed table, cut at the header's column starts."""
    lines = out.splitlines()
    header_at = next(i for i, line in enumerate(lines) if line.startswith("SOURCE "))
    header = lines[header_at]
    columns = header.split()
    starts = [header.index(f"{c} " if c != columns[-1] else c) for c in columns]
    rows = []
    for line in lines[header_at + 1 : -1]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows.append(dict(zip((c.lower() for c in columns), cells, strict=True)))
    return rows


def by_name(rows: list[dict[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
    """By (source, name): a signal both listed and browsed shows up twice, read the same."""
    return {(row["source"], row["name"]): row for row in rows}


async def test_every_problem_is_named_in_its_row_and_fails_the_check(
    sim: Simulation, tmp_path: Path
) -> None:
    path = await agent_config(sim, tmp_path, broken=True)
    code, out, err = await check_config("--connect", "--timeout", "5", str(path))
    assert code == 1, err
    lines = table(out)
    rows = by_name(lines)
    ghost = rows[("opc", "press-01/ghost")]
    assert ghost["problem"] == "node does not exist (BadNodeIdUnknown)"
    assert ghost["address"].startswith(f"nsu={NAMESPACE_URI};s={PRESS}/no_such_signal")
    far = rows[("mb", "pump-far/far")]
    assert far["problem"] == "illegal data address (exception code 2)"
    assert (far["address"], far["type"], far["quality"]) == ("unit 1 holding 9000", "uint16", "bad")
    assert rows[("mb-down", "pump-09/far")]["problem"] == "connection refused"
    refused = rows[("opc-wrong", "press-01/pressure")]["problem"]
    assert refused == "server refused the session (BadUserAccessDenied)"
    # The good ones next to them were read over the secure channel and from the registers.
    pressure = rows[("opc", "press-01/pressure")]
    assert (pressure["type"], pressure["quality"], pressure["problem"]) == ("Double", "good", "-")
    assert pressure["value"].endswith(" bar")
    # The source with the wrong password fails both its nodes.
    assert rows[("opc-wrong", "press-01/ghost")]["problem"] == refused
    assert sum(row["problem"] != "-" for row in lines) == 5
    assert out.splitlines()[-1] == f"{len(lines)} checked, 5 with a problem"


async def test_a_good_config_reads_every_signal_and_passes(sim: Simulation, tmp_path: Path) -> None:
    path = await agent_config(sim, tmp_path, broken=False)
    code, out, err = await check_config("--connect", str(path))
    assert code == 0, out + err
    lines = table(out)
    rows = by_name(lines)
    assert {name.split("/")[1] for source, name in rows if source == "mb"} == PUMP_SIGNALS
    browsed = {name for source, name in rows if source == "opc"}
    assert {"press-01/bearing_temp", "press-01/pressure"} <= browsed
    assert all(row["quality"] == "good" and row["problem"] == "-" for row in rows.values())
    speed = rows[("mb", "pump-01/speed")]
    assert (speed["address"], speed["type"]) == ("unit 1 holding 0", "float32 ABCD")
    assert speed["value"].endswith(" rpm")
    assert out.splitlines()[-1] == f"{len(lines)} checked, no problems"


async def test_without_connect_the_check_stays_offline(sim: Simulation, tmp_path: Path) -> None:
    path = await agent_config(sim, tmp_path, broken=True)
    code, out, _ = await check_config("--config", str(path))
    assert code == 0
    assert "gateway gw-k (plant plant-k)" in out
    assert "SOURCE" not in out


async def test_a_large_config_shows_progress(sim: Simulation, tmp_path: Path) -> None:
    port = sim.endpoints()["plant-k"].modbus_port
    profile = str(PROFILES / "centrifugal_pump.yaml")
    devices = [pump(1, f"pump-{i:02d}", profile) for i in range(12)]  # 120 registers
    source = {"type": "modbus", "name": "mb", "host": "127.0.0.1", "port": port, "devices": devices}
    path = tmp_path / "large.yaml"
    path.write_text(yaml.safe_dump({"gateway_id": "gw-k", "plant": "plant-k", "sources": [source]}))
    code, out, err = await check_config("--connect", str(path))
    assert code == 0, out + err
    progress = [line for line in err.splitlines() if line.startswith("checked ")]
    assert progress[-1] == "checked 120/120 signals"
    assert len(progress) >= 5  # tenths of the way, not one line per signal
    assert len(progress) <= 10
    assert out.splitlines()[-1] == "120 checked, no problems"
