"""Child processes a command starts and must stop again: the demo's services, end-to-end tests.

Each child runs in its own process group with its output in a log file; stopping sends SIGTERM
(a clean shutdown: flush, publish death, commit), then SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_s: float = 15.0) -> int:
        """SIGTERM, wait up to `grace_s`, then SIGKILL. Returns the exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


@dataclass
class Children:
    """The services one command runs, stopped in reverse start order."""

    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    per_child: dict[str, dict[str, str]] = field(default_factory=dict)
    """What only one child gets, by name: its own credentials, for example."""
    started: list[Child] = field(default_factory=list)

    def start_module(self, name: str, module: str, *args: str) -> Child:
        """`python -m module args...` with this interpreter, so it runs in the same environment
        (plus what `per_child` holds for `name`)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env, **self.per_child.get(name, {})},
                start_new_session=True,
            )
        child = Child(name, process, log_path)
        self.started.append(child)
        return child

    def dead(self) -> list[Child]:
        return [c for c in self.started if not c.alive()]

    def stop(self, names: list[str] | None = None, grace_s: float = 15.0) -> dict[str, int]:
        codes = {}
        for child in reversed(self.started):
            if names is None or child.name in names:
                codes[child.name] = child.stop(grace_s)
        self.started = [c for c in self.started if c.name not in codes]
        return codes

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def wait_until(predicate: Callable[[], object], timeout_s: float, interval_s: float = 0.5) -> bool:
    """Poll `predicate` until it returns truthy or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())
