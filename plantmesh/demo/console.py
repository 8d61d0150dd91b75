"""The console the demo leaves running: the demo's alarm service (API and web console on the
demo's database), started on its own after the demo's other services have stopped, so the
alarms, the incident and the scorecards can be explored in a browser. One at a time: a new
demo stops the last one's, and `plantmesh stack down` stops it with the stack."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from plantmesh.children import wait_until
from plantmesh.demo.alarm_story import Api, ApiError
from plantmesh.stack.process import Identity, alive, read_cmdline, start_detached, stop

STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Console:
    pid: int
    url: str
    log: Path


def _record(state: Path) -> Path:
    return state / "demo" / "console.json"


def _identity(executable: str, config: Path) -> Identity:
    return Identity(os.path.basename(executable), str(config), ("alerting", "alarms"))


def start_console(
    state: Path, config: Path, env: dict[str, str], api: Api, log: Path
) -> Console | None:
    """The alarm service of `config` in a session of its own (it outlives the demo); None, with
    its log kept, if it does not answer within a minute."""
    stop_console(state)
    argv = [sys.executable, "-m", "alerting", "alarms", "--config", str(config)]
    proc = start_detached(argv, log, Path.cwd(), {**os.environ, **env})
    record = _record(state)
    record.parent.mkdir(parents=True, exist_ok=True)
    # What it was started as: whoever stops it may run another interpreter (python, python3).
    started = {"pid": proc.pid, "executable": argv[0], "config": str(config), "url": api.url}
    record.write_text(json.dumps(started))

    def answers() -> bool:
        try:
            api.call("", "GET", "/healthz")
        except ApiError:
            return False
        return True

    if not wait_until(lambda: answers() or proc.poll() is not None, timeout_s=60):
        stop_console(state)
        return None
    if proc.poll() is not None:
        record.unlink(missing_ok=True)
        return None
    return Console(proc.pid, api.url, log)


def stop_console(state: Path) -> int | None:
    """Stop the demo's console if it still runs (only the process recorded, and only if it is
    still that alarm service). The pid it stopped, or None."""
    record = _record(state)
    try:
        found = json.loads(record.read_text())
        pid, config = int(found["pid"]), Path(found["config"])
        identity = _identity(str(found["executable"]), config)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    record.unlink(missing_ok=True)
    if not alive(pid) or not identity.matches(read_cmdline(pid) or []):
        return None  # gone, or the pid is somebody else's now
    stop(pid, identity, STOP_TIMEOUT_S)
    return pid
