"""Bringing the local stack up and down and asking how it is: the Python API behind
`plantmesh stack`, also used by the test fixtures and the demo.

    from plantmesh.stack import manager
    urls = manager.up()        # {"PLANTMESH_MQTT_URL": "mqtt://127.0.0.1:11883", ...}
    manager.status()           # [ServerStatus(name="mosquitto", healthy=True, ...), ...]
    manager.down()

Every function takes an optional StackConfig (default: from the environment, see paths.py) and
an optional `only` list of server names, so tests can run a second stack on other ports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from plantmesh.stack.errors import StackError
from plantmesh.stack.influxdb import InfluxDB
from plantmesh.stack.kafka import Kafka
from plantmesh.stack.mosquitto import Mosquitto
from plantmesh.stack.paths import HOST, StackConfig
from plantmesh.stack.postgres import Postgres
from plantmesh.stack.process import (
    alive,
    exited,
    force_kill,
    log_size,
    port_free,
    read_cmdline,
    request_stop,
    start_detached,
    tail,
    wait_gone,
)
from plantmesh.stack.server import Server
from plantmesh.stack.system import Progress, Report, ensure_installed, file_lock

SERVER_TYPES: tuple[type[Server], ...] = (Mosquitto, Kafka, InfluxDB, Postgres)
NAMES: tuple[str, ...] = tuple(t.name for t in SERVER_TYPES)
ALIASES = {"mqtt": "mosquitto", "influx": "influxdb", "postgresql": "postgres", "pg": "postgres"}


def resolve_name(name: str) -> str:
    resolved = ALIASES.get(name, name)
    if resolved not in NAMES:
        raise StackError(f"unknown server {name!r}: expected one of {', '.join(NAMES)}")
    return resolved


def servers(config: StackConfig | None = None, only: Iterable[str] | None = None) -> list[Server]:
    cfg = config or StackConfig.from_env()
    wanted = None if only is None else {resolve_name(n) for n in only}
    return [t(cfg) for t in SERVER_TYPES if wanted is None or t.name in wanted]


def state_dir(config: StackConfig | None = None) -> Path:
    return (config or StackConfig.from_env()).state


def env(config: StackConfig | None = None, only: Iterable[str] | None = None) -> dict[str, str]:
    """The variables plantmesh.connections reads, pointing at this stack."""
    return {s.env_var: s.address for s in servers(config, only)}


def extra_env(
    config: StackConfig | None = None, only: Iterable[str] | None = None
) -> dict[str, str]:
    """What `plantmesh stack env` prints besides `env()`: the TLS MQTT address and its CA."""
    return {k: v for s in servers(config, only) for k, v in s.extra_env().items()}


def log_file(name: str, config: StackConfig | None = None) -> Path:
    return servers(config, [name])[0].log_path


@dataclass(frozen=True)
class ServerStatus:
    name: str
    address: str
    port: int
    pid: int | None
    version: str | None
    healthy: bool
    log_path: Path

    @property
    def state(self) -> Literal["healthy", "unhealthy", "stopped"]:
        if self.pid is None:
            return "stopped"
        return "healthy" if self.healthy else "unhealthy"


def status(
    config: StackConfig | None = None, only: Iterable[str] | None = None
) -> list[ServerStatus]:
    result = []
    for server in servers(config, only):
        pid = server.running_pid()
        result.append(
            ServerStatus(
                name=server.name,
                address=server.shown_address,
                port=server.ports[0],  # the one clients use
                pid=pid,
                version=server.version(),
                healthy=pid is not None and server.healthy(),
                log_path=server.log_path,
            )
        )
    return result


@dataclass
class UpResult:
    urls: dict[str, str]
    started: list[str] = field(default_factory=list)
    """Servers this call started (and a matching `down(only=started)` stops)."""
    already_running: list[str] = field(default_factory=list)


def up(
    config: StackConfig | None = None,
    only: Iterable[str] | None = None,
    report: Report | None = None,
) -> dict[str, str]:
    """Provision what is missing, start what is not running, return once all answer; the URLs
    (as `env()`). Servers keep running after this process exits."""
    return bring_up(config, only, report).urls


def bring_up(
    config: StackConfig | None = None,
    only: Iterable[str] | None = None,
    report: Report | None = None,
) -> UpResult:
    """`up`, also telling which servers this call started."""
    cfg = config or StackConfig.from_env()
    progress = Progress(report)
    selected = servers(cfg, only)
    result = UpResult(urls={s.env_var: s.address for s in selected})
    with file_lock(cfg.state / "stack.lock"):
        to_start: list[Server] = []
        for server in selected:
            pid = server.running_pid()
            if pid is None:
                to_start.append(server)
                continue
            result.already_running.append(server.name)
            _wait_ready(server, pid, None, progress)
            progress(server.name, f"already running (pid {pid}) on {server.shown_address}")
            if hint := server.restart_hint():
                progress(server.name, hint)
        if not to_start:
            progress("stack", "already running: nothing to do")
            return result
        _check_ports(to_start)
        requirements = [r for s in to_start for r in s.requirements()]
        ensure_installed(requirements, cfg.cache / "apt.log", progress)
        started: list[tuple[Server, int]] = []
        lock = threading.Lock()

        def launch(server: Server) -> None:
            pid = _launch(server, progress)
            with lock:
                started.append((server, pid))
            _wait_ready(server, pid, log_offsets[server.name], progress)
            server.after_start(progress)

        log_offsets = {s.name: log_size(s.log_path) for s in to_start}
        errors: list[str] = []
        with ThreadPoolExecutor(max_workers=len(to_start), thread_name_prefix="stack") as pool:
            futures = [(s, pool.submit(launch, s)) for s in to_start]
            for server, future in futures:
                try:
                    future.result()
                except StackError as exc:
                    errors.append(f"{server.name}: {exc}")
        if errors:
            for server, pid in started:  # all or nothing: undo what this call started
                _stop_one(server, pid)
                server.pid_file.remove()
            raise StackError("\n\n".join(errors))
        result.started = [s.name for s, _ in started]
    shown = {s.env_var: s.shown_address for s in selected}
    progress("stack", "up: " + "  ".join(f"{k}={v}" for k, v in shown.items()))
    return result


def _check_ports(to_start: list[Server]) -> None:
    for server in to_start:
        for port in server.ports:
            if not port_free(port, HOST):
                raise StackError(
                    f"port {port} ({server.name}) on {HOST} is in use by a process that is not "
                    f"this stack's {server.name}; stop it, or choose other ports with "
                    f"{server.port_var}=<port>"
                )


def _launch(server: Server, progress: Progress) -> int:
    server.provision(progress)
    server.prepare(progress)
    proc = start_detached(server.command(), server.log_path, cwd=server.dir)
    server.pid_file.write(proc.pid)
    progress(
        server.name, f"started (pid {proc.pid}), waiting for it to answer on {server.shown_address}"
    )
    return proc.pid


def _wait_ready(server: Server, pid: int, log_offset: int | None, progress: Progress) -> None:
    """Wait until the server answers its health check; StackError with its log's end if it
    exits or does not answer in time."""
    deadline = time.monotonic() + server.startup_timeout
    started = time.monotonic()
    while True:
        ok = server.healthy() if log_offset is None else server.ready(log_offset)
        if ok:
            if log_offset is not None:
                elapsed = time.monotonic() - started
                progress(server.name, f"healthy after {elapsed:.1f}s (pid {pid})")
            return
        gone, code = exited(pid)
        if gone:
            what = f"exited with code {code}" if code is not None else "exited"
            raise StackError(
                f"{server.name} {what} during startup; last lines of {server.log_path}:\n"
                + tail(server.log_path, 30)
            )
        if time.monotonic() > deadline:
            raise StackError(
                f"{server.name} (pid {pid}) did not answer on {server.shown_address} within "
                f"{server.startup_timeout:.0f}s; last lines of {server.log_path}:\n"
                + tail(server.log_path, 30)
            )
        time.sleep(0.1)


def _stop_one(server: Server, pid: int) -> Literal["stopped", "killed"]:
    request_stop(pid, server.identity, server.stop_signal)
    return _finish_stop(server, pid)


def _finish_stop(server: Server, pid: int) -> Literal["stopped", "killed"]:
    """Wait for a server that got SIGTERM; SIGKILL it when it overstays its stop timeout."""
    if wait_gone(pid, server.stop_timeout):
        return "stopped"
    force_kill(pid, server.identity)
    wait_gone(pid, 5.0)
    return "killed"


@dataclass(frozen=True)
class StopOutcome:
    name: str
    pid: int | None
    result: Literal["stopped", "killed", "not running", "refused"]
    detail: str = ""


def down(
    config: StackConfig | None = None,
    only: Iterable[str] | None = None,
    report: Report | None = None,
) -> list[StopOutcome]:
    """Stop exactly the servers `up` started: a pid is signalled only if /proc/PID/cmdline still
    is our server; anything else is left alone and reported as refused."""
    cfg = config or StackConfig.from_env()
    progress = Progress(report)
    outcomes: dict[str, StopOutcome] = {}
    signalled: list[tuple[Server, int]] = []
    with file_lock(cfg.state / "stack.lock"):
        for server in servers(cfg, only):
            recorded = server.pid_file.read()
            cmdline = None if recorded is None else read_cmdline(recorded)
            if (
                recorded is not None
                and alive(recorded)
                and not (cmdline and server.identity.matches(cmdline))
            ):
                shown = " ".join(cmdline)[:120] if cmdline else "no readable command line"
                detail = (
                    f"pid {recorded} in {server.pid_file.path} is not our {server.name} "
                    f"({shown}); left it alone"
                )
                outcomes[server.name] = StopOutcome(server.name, recorded, "refused", detail)
                server.pid_file.remove()  # stale: it names somebody else's process
            pid = server.running_pid()
            if pid is not None and request_stop(pid, server.identity, server.stop_signal):
                signalled.append((server, pid))
            elif server.name not in outcomes:
                outcomes[server.name] = StopOutcome(server.name, None, "not running")
                server.pid_file.remove()
        for server, pid in signalled:  # all got SIGTERM first, so they shut down in parallel
            outcomes[server.name] = StopOutcome(server.name, pid, _finish_stop(server, pid))
            server.pid_file.remove()
    ordered = [outcomes[s.name] for s in servers(cfg, only)]
    for outcome in ordered:
        which = f" (pid {outcome.pid})" if outcome.pid and outcome.result != "refused" else ""
        detail = f": {outcome.detail}" if outcome.detail else ""
        progress(outcome.name, f"{outcome.result}{which}{detail}")
    return ordered
