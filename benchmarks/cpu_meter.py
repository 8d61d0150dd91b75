"""CPU time of processes, read from /proc, for the benchmarks: this process, named pids and the
local stack's servers, between `start()` and `stop()`."""

from __future__ import annotations

import os
import time
from pathlib import Path

from plantmesh.stack import manager

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float | None:
    """utime + stime of a process in seconds; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def local_server_pids(addresses: set[str]) -> dict[str, int]:
    """Pids of the local stack's servers at these addresses (none when the run uses others)."""
    return {s.name: s.pid for s in manager.status() if s.pid is not None and s.address in addresses}


class CpuMeter:
    """CPU seconds of this process and of `pids` (name -> pid) between `start()` and `stop()`."""

    def __init__(self, pids: dict[str, int] | None = None) -> None:
        self.pids = dict(pids or {})
        self.used: dict[str, float] = {}
        self.wall = 0.0
        self._from: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        now = {"this process": time.process_time(), "wall": time.perf_counter()}
        for name, pid in self.pids.items():
            value = cpu_s(pid)
            if value is not None:
                now[name] = value
        return now

    def start(self) -> None:
        self._from = self._now()

    def stop(self) -> None:
        now = self._now()
        self.wall = now.pop("wall") - self._from["wall"]
        self.used = {name: now[name] - self._from[name] for name in now if name in self._from}

    def line(self, phase: str) -> str:
        parts = ", ".join(f"{name} {seconds:.2f}" for name, seconds in self.used.items())
        return f"{phase:<8} {self.wall:6.2f} s wall; CPU s: {parts}"
