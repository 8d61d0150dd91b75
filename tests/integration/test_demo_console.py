"""The console `plantmesh demo` leaves running is stopped by whoever runs `plantmesh stack down`
(another interpreter name than the demo's included), and only if it still is that process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantmesh.demo.console import stop_console

pytestmark = pytest.mark.integration


@pytest.fixture
def lookalike(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process whose command line reads like the demo's alarm service."""
    config = tmp_path / "alarms.yaml"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "alerting", "alarms", str(config)]
    )
    yield proc
    proc.kill()
    proc.wait(timeout=10)


def _record(state: Path, pid: int, config: Path) -> Path:
    path = state / "demo" / "console.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    started = {"pid": pid, "executable": sys.executable, "config": str(config), "url": "x"}
    path.write_text(json.dumps(started))
    return path


def test_the_recorded_console_is_stopped(
    tmp_path: Path, lookalike: subprocess.Popen[bytes]
) -> None:
    record = _record(tmp_path, lookalike.pid, tmp_path / "alarms.yaml")
    assert stop_console(tmp_path) == lookalike.pid
    assert lookalike.wait(timeout=20) is not None
    assert not record.exists()
    assert stop_console(tmp_path) is None  # nothing recorded any more


def test_a_pid_that_is_somebody_else_now_is_left_alone(
    tmp_path: Path, lookalike: subprocess.Popen[bytes]
) -> None:
    _record(tmp_path, lookalike.pid, tmp_path / "other.yaml")
    assert stop_console(tmp_path) is None
    assert lookalike.poll() is None
