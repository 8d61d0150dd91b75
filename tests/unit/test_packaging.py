"""The package boundaries ARCHITECTURE.md promises, checked on the source and the metadata."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest

from plantmesh.cli import main

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("edge_agent", "ingest", "alerting", "simulators")
CLOUD_LIBRARIES = ("aiokafka", "influxdb_client", "influxdb-client")


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", [*SERVICES, "plantmesh"])
def test_no_service_imports_another(package: str) -> None:
    allowed = {package}
    offenders = {
        f"{path.relative_to(ROOT)} imports {other}"
        for path in (ROOT / package).rglob("*.py")
        for other in _imported_packages(path) & set(SERVICES)
        if other not in allowed
    }
    assert not offenders, sorted(offenders)


def test_edge_extra_pulls_no_cloud_library() -> None:
    edge = [r for r in requires("plantmesh") or [] if 'extra == "edge"' in r]
    assert edge, "the edge extra is declared"
    assert not [r for r in edge if r.startswith(CLOUD_LIBRARIES)], edge


def test_agent_imports_no_cloud_library() -> None:
    code = (
        "import sys, pkgutil, importlib, edge_agent\n"
        "for m in pkgutil.walk_packages(edge_agent.__path__, 'edge_agent.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('aiokafka', 'influxdb_client'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


@pytest.mark.parametrize(
    ("source", "absent"),
    [("edge_agent.sources.modbus", "asyncua"), ("edge_agent.sources.opcua", "pymodbus")],
)
def test_an_agent_of_one_protocol_loads_only_its_library(source: str, absent: str) -> None:
    """asyncua alone is about 30 MB resident: a Modbus-only gateway (a Raspberry Pi) must not
    pay for it, nor an OPC UA one for pymodbus."""
    code = (
        f"import sys, edge_agent.cli, edge_agent.agent, edge_agent.log_filters, {source}\n"
        f"print(','.join(sorted(n for n in sys.modules if n.split('.')[0] == '{absent}')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_plantmesh_import_path_needs_no_cloud_or_metrics_library() -> None:
    """The agent imports plantmesh's core; plantmesh.kafka (aiokafka) and plantmesh.metrics
    (prometheus-client) are imported only by the services whose extras bring them."""
    core = "cli, config, contracts, topics, connections, logs, resilience, dead_letters"
    code = (
        f"import importlib, sys\nfor m in '{core}'.split(', '):\n"
        "    importlib.import_module('plantmesh.' + m)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in "
        "('aiokafka', 'influxdb_client', 'prometheus_client'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
    alerting = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "alerting").rglob("*.py")
        if "plantmesh.metrics" in path.read_text() or "prometheus_client" in path.read_text()
    }
    assert not alerting, "the alerting extra has no prometheus-client"


def test_the_command_needs_no_cryptography_outside_the_stack() -> None:
    """cryptography comes with the `stack` extra (the local stack's TLS certificates): an install
    of only `ingest` and `alerting` (the central image) must still run `plantmesh`."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'cryptography':\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from plantmesh.cli import main\n"
        "sys.exit(main(['stack', '--help']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "stack" in result.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["agent", "run", "--config"],
        ["ingest", "bridge", "--config"],
        ["ingest", "writer", "--config"],
        ["alerting", "run", "--config"],
        ["sim", "run", "--network"],
    ],
)
def test_every_service_names_file_and_key_of_a_bad_config(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("no_such_key: 1\n")
    assert main([*argv, str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert "no_such_key: unknown key" in err


@pytest.mark.parametrize("package", SERVICES)
def test_python_dash_m_runs_every_service(package: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", package, "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
