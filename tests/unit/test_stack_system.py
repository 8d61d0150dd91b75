"""Provisioning helpers: missing packages, failing commands and dying servers give messages a
user can act on."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from plantmesh.stack import manager
from plantmesh.stack.errors import StackError
from plantmesh.stack.kafka import metadata_ok
from plantmesh.stack.paths import StackConfig
from plantmesh.stack.process import Identity, start_detached
from plantmesh.stack.server import Server
from plantmesh.stack.system import Progress, Requirement, ensure_installed, run_logged


def test_missing_program_without_root_names_the_exact_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    needs = [Requirement("/nonexistent/mosquitto", ("mosquitto", "mosquitto-clients"))]
    with pytest.raises(StackError) as caught:
        ensure_installed(needs, tmp_path / "apt.log", Progress(lambda _: None))
    assert "sudo apt-get install -y mosquitto mosquitto-clients" in str(caught.value)


def test_present_programs_need_no_install(tmp_path: Path) -> None:
    needs = [Requirement(sys.executable, ("python3",))]
    ensure_installed(needs, tmp_path / "apt.log", Progress(lambda _: None))
    assert not (tmp_path / "apt.log").exists()


def test_failing_command_reports_the_end_of_its_log(tmp_path: Path) -> None:
    code = (
        "import sys; print('resolving'); print('artifact not found', file=sys.stderr); sys.exit(4)"
    )
    with pytest.raises(StackError, match=r"exited with 4(.|\n)*artifact not found"):
        run_logged([sys.executable, "-c", code], tmp_path / "mvn.log")
    assert "resolving" in (tmp_path / "mvn.log").read_text()


def test_progress_lines_carry_elapsed_seconds() -> None:
    lines: list[str] = []
    progress = Progress(lines.append)
    with progress.step("influxdb", "building"):
        pass
    assert len(lines) == 2
    assert re.fullmatch(r"\[ +\d+\.\ds\] influxdb: building\.\.\.", lines[0])
    assert "influxdb: done (" in lines[1]


class _Crashing(Server):
    """A "server" that dies at startup after printing why, as a misconfigured one would."""

    name = "crashing"
    env_var = "X"
    port_var = "Y"
    startup_timeout = 10.0

    @property
    def port(self) -> int:
        return 1

    @property
    def address(self) -> str:
        return "nowhere"

    @property
    def identity(self) -> Identity:
        return Identity("python", "nothing")

    def prepare(self, progress: Progress) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [sys.executable, "-c", "print('Error: invalid listener 1'); raise SystemExit(3)"]

    def healthy(self) -> bool:
        return False

    def version(self) -> str | None:
        return None


def test_a_server_dying_at_startup_is_reported_with_its_log(tmp_path: Path) -> None:
    server = _Crashing(StackConfig(cache=tmp_path, state=tmp_path / "state"))
    server.prepare(Progress(lambda _: None))
    proc = start_detached(server.command(), server.log_path, cwd=server.dir)
    with pytest.raises(StackError, match=r"exited with code 3(.|\n)*invalid listener 1"):
        manager._wait_ready(server, proc.pid, 0, Progress(lambda _: None))


def test_kafka_health_falls_back_without_aiokafka(monkeypatch: pytest.MonkeyPatch) -> None:
    # The edge-only install has no aiokafka: the check must say "unknown", not crash.
    monkeypatch.setitem(sys.modules, "aiokafka.client", None)
    assert metadata_ok("127.0.0.1:1") is None
