"""The README's "Connect your first PLC" walkthrough, run line by line as a new user would: the
commands are read from the README (between the first-plc markers), so the documented steps and
the tested ones cannot drift apart.

Adapted to a shared test machine only where it must be: the stack is the session's (its
`plantmesh stack` line is skipped, the session's environment holds what `stack env` exports),
the stand-in PLC gets free ports, and the gateway, namespace and database get names of their own.
Lines ending in `&` run in the background and are stopped at the end; every other line must exit
0; the last one (`plantmesh query last`) is repeated until the values are there."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.ingest import influxql
from tests.support.ports import free_port
from tests.support.waiting import SCALE, async_wait_for, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- first-plc:begin -->", "<!-- first-plc:end -->"


def walkthrough() -> list[str]:
    """The commands of the README's walkthrough block, comments and blank lines left out."""
    text = (REPO / "README.md").read_text()
    assert BEGIN in text, "the README lost its first-plc walkthrough"
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    commands = []
    for line in block.splitlines():
        code = line.split("  #", 1)[0].strip()
        if code and not code.startswith(("#", "```")):
            commands.append(code)
    return commands


@dataclass
class Session:
    """One walkthrough run: its directory, names, environment and background jobs."""

    cwd: Path
    namespace: str
    gateway: str
    opcua_port: int
    modbus_port: int
    env: dict[str, str]
    jobs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def localized(self, command: str) -> str:
        return (
            command.replace("127.0.0.1:4840", f"127.0.0.1:{self.opcua_port}")
            .replace("127.0.0.1:5020", f"127.0.0.1:{self.modbus_port}")
            .replace(" deploy/", f" {REPO}/deploy/")
            .replace("--namespace first-plc", f"--namespace {self.namespace}")
            .replace("--db first-plc", f"--db {self.namespace}")
            .replace("gw-first", self.gateway)
        )

    def run(self, command: str, *, check: bool = True) -> str:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120 * SCALE,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0 or not check, f"`{command}` exited {done.returncode}:\n{output}"
        return output

    def start(self, command: str) -> None:
        log = (self.cwd / f"job-{len(self.jobs)}.log").open("wb")
        self.jobs.append(
            subprocess.Popen(
                ["bash", "-c", f"exec {command}"],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        log.close()

    def stop_jobs(self) -> None:
        for job in self.jobs:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGTERM)
        for job in self.jobs:
            try:
                job.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.cwd.glob("job-*.log"))
        )


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def session(tmp_path: Path, namespace: str) -> Iterator[Session]:
    opcua_port, modbus_port = free_port(), free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "FIRST_PLC_NAMESPACE": namespace,
        "FIRST_PLC_OPCUA_PORT": str(opcua_port),
        "FIRST_PLC_MODBUS_PORT": str(modbus_port),
        "PLANTMESH_LOG_FORMAT": "text",
    }
    run = Session(tmp_path, namespace, f"gw-{namespace}", opcua_port, modbus_port, env)
    try:
        yield run
    finally:
        run.stop_jobs()
        subprocess.run(
            [sys.executable, "-m", "plantmesh.cli", "gateway", "remove", run.gateway],
            env=env,
            capture_output=True,
            timeout=60,
        )


def _rows(output: str) -> dict[tuple[str, str], list[str]]:
    """`query last`'s table: (machine, signal) -> the row's cells."""
    rows = {}
    for line in output.splitlines()[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) >= 6:
            rows[(cells[1], cells[2])] = cells
    return rows


async def test_the_readmes_first_plc_walkthrough_works_as_written(
    session: Session, influx_url: str
) -> None:
    commands = walkthrough()
    assert commands[-1].startswith("plantmesh query last"), commands[-1]
    outputs: dict[str, str] = {}
    try:
        for command in commands[:-1]:
            if command.startswith("plantmesh stack "):
                continue  # the session's stack, and its environment, are there already
            local = session.localized(command)
            if command.endswith("&"):
                session.start(local.removesuffix("&").strip())
                if "sim run" in command:
                    wait_for(
                        lambda: _listening(session.opcua_port) and _listening(session.modbus_port),
                        60,
                        "the stand-in PLC to listen",
                    )
                continue
            outputs[command] = session.run(local)

        query = session.localized(commands[-1])
        wanted = {("press-01", "bearing_temp"), ("pump-01", "speed"), ("pump-01", "motor_current")}

        async def values_shown() -> dict[tuple[str, str], list[str]] | None:
            rows = _rows(session.run(query, check=False))  # no database until the first write
            return rows if wanted <= rows.keys() else None

        shown = await async_wait_for(values_shown, 90, "the PLC's values in `plantmesh query last`")
    except (AssertionError, subprocess.TimeoutExpired):
        print(session.logs())
        raise
    finally:
        session.stop_jobs()
        await influxql(influx_url, f'DROP DATABASE "{session.namespace}"')

    config = (session.cwd / "first-plc.yaml").read_text()
    assert f"gateway_id: {session.gateway}" in config
    assert config.count("- type: ") == 2  # the OPC UA and the Modbus source, added in turn
    check = next(out for cmd, out in outputs.items() if "check-config --connect" in cmd)
    assert "12 checked, no problems" in check, check
    assert shown is not None
    for key in wanted:  # plant, machine, signal, time, value, unit, quality
        assert shown[key][6] == "good", shown[key]
        assert float(shown[key][4]) > 0, shown[key]
