"""Server processes: start detached, find again by pid file or /proc, stop only what is ours.

A process is "ours" when /proc/PID/cmdline names the expected executable and our own config file
(a path inside our state directory), so a recycled pid or another stack's server is never signalled.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from plantmesh.stack.errors import StackError

# Popen objects of the servers this interpreter started: kept so their exit can be seen during
# startup and reaped on stop (no zombies, no "still running" warning when they are collected).
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class Identity:
    """How to recognise one of our servers from its command line."""

    executable: str
    """Basename of argv[0], e.g. "mosquitto", "java", "influxd"."""
    marker: str
    """Our config file's absolute path: it appears as a whole argument."""
    also: tuple[str, ...] = ()
    """Further arguments that must be present, e.g. the main class "kafka.Kafka"."""

    def matches(self, cmdline: Sequence[str]) -> bool:
        if not cmdline or os.path.basename(cmdline[0]) != self.executable:
            return False
        return self.marker in cmdline and all(arg in cmdline for arg in self.also)


def read_cmdline(pid: int) -> list[str] | None:
    """The process's arguments; None when there is none to read: no such process, a zombie, or a
    process in the middle of execve (so this is not a liveness test: see `alive`)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:
        return None
    return raw.decode(errors="replace").rstrip("\0").split("\0")


def _state(pid: int) -> str | None:
    """The one-letter state from /proc/PID/stat (R, S, Z, ...), None if there is no such pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 1 :].split()  # the command name may hold spaces and ")"
    return fields[0] if fields else None


def _reap(pid: int) -> None:
    """Collect the exit status of a server this interpreter started, so it does not linger as a
    zombie. Other processes' children are left to their parents (their exit status is theirs)."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        _children.pop(pid, None)


def alive(pid: int) -> bool:
    """Does the process exist and has not exited (a zombie has)?"""
    _reap(pid)
    state = _state(pid)
    return state is not None and state not in ("Z", "X")


class PidFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> int | None:
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() and int(text) > 0 else None

    def write(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{pid}\n")
        tmp.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _all_pids() -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def find_running(pid_file: PidFile, identity: Identity) -> int | None:
    """The pid of our live server: the pid file's if it verifies, else a /proc scan (which finds a
    server whose pid file was lost). None when it is not running."""
    pid = pid_file.read()
    if pid is not None:
        _reap(pid)
        cmdline = read_cmdline(pid)
        if cmdline is not None and identity.matches(cmdline):
            return pid
    for candidate in _all_pids():
        cmdline = read_cmdline(candidate)
        if cmdline is not None and identity.matches(cmdline):
            return candidate
    return None


def start_detached(
    argv: Sequence[str], log_path: Path, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a server that outlives this process: its own session (no terminal signals), output
    appended to its log file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=None if env is None else dict(env),
            start_new_session=True,
        )
    _children[proc.pid] = proc
    return proc


def exited(pid: int) -> tuple[bool, int | None]:
    """(has it exited, its exit code when it was a child this interpreter started)."""
    child = _children.get(pid)
    if child is not None:
        code = child.poll()
        return code is not None, code
    return not alive(pid), None


def _signal_if_ours(pid: int, identity: Identity, sig: signal.Signals) -> bool:
    """Send `sig` only if the pid still is our server. A pidfd pins the process between the check
    and the signal, so a pid recycled in between cannot be hit."""
    try:
        fd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return False
    try:
        cmdline = read_cmdline(pid)
        if cmdline is None or not identity.matches(cmdline):
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)


def request_stop(pid: int, identity: Identity, sig: signal.Signals = signal.SIGTERM) -> bool:
    """Ask our server to stop (SIGTERM unless it wants another signal). False (and nothing
    sent) if the pid is gone or is not ours."""
    return _signal_if_ours(pid, identity, sig)


def send_signal(pid: int, identity: Identity, sig: signal.Signals) -> bool:
    """Signal our server (SIGHUP: reload). False (and nothing sent) if the pid is not ours."""
    return _signal_if_ours(pid, identity, sig)


def force_kill(pid: int, identity: Identity) -> bool:
    """SIGKILL our server (one that ignored SIGTERM). False if the pid is gone or not ours."""
    return _signal_if_ours(pid, identity, signal.SIGKILL)


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop(pid: int, identity: Identity, timeout: float) -> bool:
    """SIGTERM, wait up to `timeout`, then SIGKILL. True if it is gone. Refuses (StackError) a
    pid that is not ours."""
    if not alive(pid):
        return True
    cmdline = read_cmdline(pid) or []
    if not identity.matches(cmdline):
        raise StackError(f"pid {pid} is not our {identity.executable}: {' '.join(cmdline)[:200]}")
    request_stop(pid, identity)
    if wait_gone(pid, timeout):
        return True
    force_kill(pid, identity)
    return wait_gone(pid, 5.0)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on host:port. SO_REUSEADDR, as servers use, so connections left in
    TIME_WAIT by a server that just stopped do not count as taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_accepts(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_from(path: Path, offset: int) -> str:
    """The log written since `offset` (so a line from an earlier run does not count). A file
    now shorter than `offset` was rolled over since: all of it is new."""
    try:
        with path.open("rb") as f:
            if f.seek(0, io.SEEK_END) < offset:
                offset = 0
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a (possibly large) log file."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256 * max(lines, 1) - 4096))
            data = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:]) if lines > 0 else ""
