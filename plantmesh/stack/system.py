"""What provisioning needs from the machine: Debian packages, logged external commands, locks,
and progress lines for steps that take a while."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from plantmesh.stack.errors import StackError
from plantmesh.stack.process import tail

Report = Callable[[str], None]


class Progress:
    """One line per step, stamped with the seconds since `up` began; safe from several threads."""

    def __init__(self, report: Report | None = None) -> None:
        self._report = report or (lambda line: print(line, flush=True))
        self._t0 = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self, who: str, message: str) -> None:
        with self._lock:
            self._report(f"[{time.monotonic() - self._t0:6.1f}s] {who}: {message}")

    @contextlib.contextmanager
    def step(self, who: str, message: str) -> Iterator[None]:
        started = time.monotonic()
        self(who, f"{message}...")
        yield
        self(who, f"done ({time.monotonic() - started:.1f}s)")


@dataclass(frozen=True)
class Requirement:
    """A program provisioning needs, and the Debian packages that provide it."""

    program: str
    """A bare name looked up on PATH, or an absolute path."""
    packages: tuple[str, ...]

    def satisfied(self) -> bool:
        return find_program(self.program) is not None


def find_program(program: str) -> str | None:
    if os.path.isabs(program):
        return program if os.access(program, os.X_OK) else None
    found = shutil.which(program)
    if found is None and program == "go":  # the upstream tarball's usual place, often not on PATH
        fallback = "/usr/local/go/bin/go"
        found = fallback if os.access(fallback, os.X_OK) else None
    return found


_apt_updated = False
_apt_lock = threading.Lock()


def ensure_installed(
    requirements: Sequence[Requirement], log_path: Path, progress: Progress
) -> None:
    """Install missing packages with apt-get when we are root; otherwise say exactly what to run."""
    global _apt_updated
    missing = [r for r in requirements if not r.satisfied()]
    if not missing:
        return
    packages = sorted({p for r in missing for p in r.packages})
    command = ["apt-get", "install", "-y", *packages]
    if os.geteuid() != 0:
        programs = ", ".join(r.program for r in missing)
        raise StackError(f"{programs} not found. Install with:\n  sudo {' '.join(command)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with _apt_lock:
        if not _apt_updated:
            with progress.step("apt", "apt-get update"):
                run_logged(["apt-get", "update"], log_path, env=env)
            _apt_updated = True
        with progress.step("apt", f"apt-get install -y {' '.join(packages)}"):
            run_logged(command, log_path, env=env)
    still = [r.program for r in missing if not r.satisfied()]
    if still:
        raise StackError(f"{', '.join(still)} still missing after installing {' '.join(packages)}")


def run_logged(
    argv: Sequence[str],
    log_path: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 1800,
    capture_stdout: bool = False,
) -> str:
    """Run a provisioning command with its output appended to `log_path` (stdout is returned
    instead when `capture_stdout`). A failure raises StackError with the command and the end of
    the log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n$ {' '.join(argv)}\n".encode())
        log.flush()
        try:
            result = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if capture_stdout else log,
                stderr=log if capture_stdout else subprocess.STDOUT,
                cwd=cwd,
                env=None if env is None else dict(env),
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StackError(f"`{' '.join(argv)}` failed: {exc}") from exc
    if result.returncode != 0:
        raise StackError(
            f"`{' '.join(argv)}` exited with {result.returncode}; last lines of {log_path}:\n"
            + tail(log_path, 25)
        )
    return result.stdout.decode(errors="replace") if capture_stdout else ""


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock: two `up`s, or two stacks sharing a cache, take turns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_private(path: Path, data: bytes) -> None:
    """Write a secret: created mode 600 (never briefly readable by others), then renamed in."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
