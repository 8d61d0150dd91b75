"""The Prometheus endpoint and the systemd notify/watchdog protocol, without a broker."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge_agent.agent import Agent
from edge_agent.buffer import BufferDrops, NewBatch
from edge_agent.disk_buffer import default_state_dir
from edge_agent.metrics import Snapshot, families
from edge_agent.publisher_stats import PublisherStats
from edge_agent.sd_notify import Notifier
from plantmesh.connections import MetricsEndpoint
from plantmesh.contracts import SourceHealth
from tests.support.agent import offline_config, offline_modbus
from tests.support.ports import free_port
from tests.support.waiting import async_wait_for


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_snapshot_becomes_metric_families() -> None:
    snap = Snapshot(
        stats=PublisherStats(readings_in=10, batches_acked=3, batches_rejected=1, connects=3),
        drops=BufferDrops(full=2, torn=1),
        connected=True,
        buffer_depth=4,
        buffer_bytes=400,
        oldest_unsent_age_s=1.5,
        sources=[SourceHealth(name="plc.m1", connected=False, errors=5, last_seen_age_s=None)],
        reloads=2,
    )
    from prometheus_client import CollectorRegistry, generate_latest

    class Fixed:
        def collect(self) -> Iterator[object]:
            return families(snap)

    registry = CollectorRegistry()
    registry.register(Fixed())  # type: ignore[arg-type]
    got = values(generate_latest(registry).decode())
    assert got[("plantmesh_agent_readings_in_total", ())] == 10
    assert got[("plantmesh_agent_batches_acked_total", ())] == 3
    assert got[("plantmesh_agent_batches_dropped_total", (("reason", "buffer_full"),))] == 2
    assert got[("plantmesh_agent_batches_dropped_total", (("reason", "torn_write"),))] == 1
    assert got[("plantmesh_agent_batches_dropped_total", (("reason", "rejected"),))] == 1
    assert got[("plantmesh_agent_reconnects_total", ())] == 2
    assert got[("plantmesh_agent_buffer_batches", ())] == 4
    assert got[("plantmesh_agent_buffer_oldest_age_seconds", ())] == 1.5
    assert got[("plantmesh_agent_source_connected", (("source", "plc.m1"),))] == 0
    assert got[("plantmesh_agent_source_errors_total", (("source", "plc.m1"),))] == 5
    assert got[("plantmesh_agent_config_reloads_total", ())] == 2


def test_metrics_listen_is_host_and_port() -> None:
    assert MetricsEndpoint(listen="127.0.0.1:9108").address == ("127.0.0.1", 9108)
    assert MetricsEndpoint().address is None
    with pytest.raises(ValueError, match="host:port"):
        MetricsEndpoint(listen="9108")


async def test_the_endpoint_serves_the_running_agents_figures() -> None:
    port = free_port()
    agent = Agent(offline_config([offline_modbus("a")], metrics={"listen": f"127.0.0.1:{port}"}))
    agent.buffer.put([NewBatch("s", 0, "t", b"12345", 1)])
    task = asyncio.create_task(agent.run(), name="metrics-agent")
    try:
        await asyncio.wait_for(agent.started.wait(), 10)

        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                return str(r.read().decode())

        got = values(await asyncio.to_thread(scrape))
        assert got[("plantmesh_agent_buffer_batches", ())] == 1
        assert got[("plantmesh_agent_buffer_bytes", ())] == 5
        assert got[("plantmesh_agent_mqtt_connected", ())] == 0
        assert ("plantmesh_agent_source_connected", (("source", "a.m"),)) in got
    finally:
        agent.stop()
        await asyncio.wait_for(task, 30)
    with socket.socket() as probe:  # the endpoint closed with the agent
        assert probe.connect_ex(("127.0.0.1", port)) != 0


async def test_a_taken_metrics_port_does_not_stop_the_agent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        agent = Agent(
            offline_config([offline_modbus("a")], metrics={"listen": f"127.0.0.1:{port}"})
        )
        task = asyncio.create_task(agent.run(), name="metrics-agent")
        try:
            await asyncio.wait_for(agent.started.wait(), 10)
            assert agent.metrics is None
            assert "metrics endpoint" in caplog.text
            assert agent.publisher.healthy
        finally:
            agent.stop()
            await asyncio.wait_for(task, 30)


# --- systemd ------------------------------------------------------------------------------
@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.setblocking(False)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


async def test_ready_watchdog_and_stopping_reach_the_notify_socket(
    notify_socket: socket.socket,
) -> None:
    env = {"NOTIFY_SOCKET": notify_socket.getsockname(), "WATCHDOG_USEC": "100000"}
    notifier = Notifier(env)
    assert notifier.watchdog_interval_s == 0.05
    agent = Agent(offline_config([offline_modbus("a")]), notifier=notifier)
    task = asyncio.create_task(agent.run(), name="notify-agent")
    seen: list[str] = []
    try:

        async def pinged_twice() -> bool:
            seen.extend(received(notify_socket))
            return seen.count("WATCHDOG=1") >= 2

        await async_wait_for(pinged_twice, 10, "two watchdog pings")
        assert seen[0] == "READY=1"
        # A publisher whose tasks died gets no more pings, so systemd restarts the agent.
        assert agent.watchdog_ping()
        agent.publisher._tasks[0].cancel()
        await asyncio.gather(agent.publisher._tasks[0], return_exceptions=True)
        assert not agent.watchdog_ping()
    finally:
        agent.stop()
        await asyncio.wait_for(task, 30)
    assert received(notify_socket)[-1] == "STOPPING=1"


def test_abstract_socket_names_and_watchdog_ownership() -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"plantmesh-test-{free_port()}"
    server.bind("\0" + name)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).notify("READY=1")
        assert server.recv(100) == b"READY=1"
    finally:
        server.close()
    assert not Notifier({}).notify("READY=1")  # not under systemd: nothing to do
    assert Notifier({"WATCHDOG_USEC": "4000000"}).watchdog_interval_s == 2.0
    assert Notifier({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}).watchdog_interval_s is None


def test_an_unreachable_notify_socket_is_not_fatal(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert not notifier.notify("READY=1")
    assert not notifier.notify("WATCHDOG=1")


SYSTEMD = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
# What a gateway's agent may do: write its buffer, talk to the network, nothing else.
HARDENING = {
    "User": ["plantmesh"],
    "NoNewPrivileges": ["yes"],
    "ProtectSystem": ["strict"],
    "ReadWritePaths": ["/var/lib/plantmesh"],
    "CapabilityBoundingSet": [""],
    "AmbientCapabilities": [""],
    "RestrictSUIDSGID": ["yes"],
    "UMask": ["0077"],
    "ProtectClock": ["yes"],
    "ProtectHostname": ["yes"],
    "ProtectKernelLogs": ["yes"],
    "ProtectProc": ["invisible"],
    "RestrictRealtime": ["yes"],
    "MemoryDenyWriteExecute": ["yes"],
    "SystemCallFilter": ["@system-service", "~@privileged @resources"],
}


def service_settings(text: str) -> dict[str, list[str]]:
    """The [Service] section's settings, each with its values in file order."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def verifiable_unit(tmp_path: Path) -> Path:
    # The gateway's paths do not exist here: point them at this checkout's venv to verify.
    text = (SYSTEMD / "plantmesh-agent.service").read_text()
    plantmesh = Path(sys.executable).parent / "plantmesh"
    unit = tmp_path / "plantmesh-agent.service"
    unit.write_text(text.replace("/opt/plantmesh/venv/bin/plantmesh", str(plantmesh)))
    return unit


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    text = (SYSTEMD / "plantmesh-agent.service").read_text()
    assert "Type=notify" in text
    assert "WatchdogSec=" in text
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text
    settings = service_settings(text)
    for key, expected in HARDENING.items():
        assert settings.get(key) == expected, key
    result = subprocess.run(
        ["systemd-analyze", "verify", str(verifiable_unit(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_the_unit_lets_the_agent_write_where_its_buffer_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = service_settings((SYSTEMD / "plantmesh-agent.service").read_text())
    # systemd tells the agent its StateDirectory= as $STATE_DIRECTORY.
    state = f"/var/lib/{settings['StateDirectory'][0]}"
    monkeypatch.setenv("STATE_DIRECTORY", state)
    assert str(default_state_dir()) in settings["ReadWritePaths"]
    assert settings["ProtectSystem"] == ["strict"]  # so nothing else is writable


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_systemd_unit_exposure_is_low(tmp_path: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(verifiable_unit(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 and "offline" in result.stderr:
        pytest.skip(f"systemd-analyze security has no --offline here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found is not None, result.stdout[-500:]
    # 1.2 with systemd 252 (0 is best, 10 unprotected); 5.8 before the hardening set.
    assert float(found.group(1)) <= 2.0, result.stdout


def test_the_install_script_parses_and_refuses_non_root() -> None:
    script = SYSTEMD / "install-agent.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    if os.geteuid() != 0:
        result = subprocess.run([str(script)], capture_output=True, text=True, check=False)
        assert result.returncode == 1
        assert "run as root" in result.stderr
