"""Measuring a client process for bench_agent.py: CPU from /proc/<pid>/stat (utime + stime over
the window), memory from /proc/<pid>/status (VmRSS at the end, VmHWM the peak), and updates
delivered per second from a counter.

Rates are taken between the ends of two bursts of arrivals inside the window (see
`Marks.rate`), not between the window's edges.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (the agent's worker processes with `workers: N`)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            with open(f"/proc/{current}/task/{current}/children") as f:
                todo.extend(int(child) for child in f.read().split())
        except OSError:
            continue
    return found


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for member in process_tree(pid):
        try:
            total += cpu_seconds(member)
        except OSError:  # ended meanwhile
            continue
    return total


def tree_memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) summed over the process and its descendants."""
    rss = hwm = 0.0
    for member in process_tree(pid):
        try:
            a, b = memory_mb(member)
        except OSError:
            continue
        rss, hwm = rss + a, hwm + b
    return rss, hwm


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


BURST_GAP_S = 0.2
CYCLE_S = 1.0
"""Servers change every value, and clients poll and publish, once a second."""


class Marks:
    """(monotonic time, values so far) each time the count moved; safe across threads."""

    def __init__(self) -> None:
        self.count = 0
        self._marks: list[tuple[float, int]] = []
        self._lock = threading.Lock()

    def add(self, n: int, at: float | None = None) -> None:
        with self._lock:
            self.count += n
            self._marks.append((time.monotonic() if at is None else at, self.count))

    def set(self, total: int, at: float) -> None:
        with self._lock:
            self.count = total
            self._marks.append((at, total))

    def rate(self, t0: float, t1: float) -> float:
        """Values per second over [t0, t1], counted between the ends of two bursts of arrivals
        inside it that lie a whole number of seconds apart (a burst ends where the next mark is
        more than BURST_GAP_S later). Every client here works in 1 s cycles and delivers in
        bursts (the agent a message per machine once a second, OPC UA publishes every 500 ms
        per server): counted from the window's edges, or between arbitrary bursts, a window of
        10 s would be off by up to 5-10 %."""
        with self._lock:
            marks = list(self._marks)
        ends = [a for a, b in itertools.pairwise(marks) if b[0] - a[0] > BURST_GAP_S]
        inside = [m for m in ends if t0 <= m[0] <= t1]
        if len(inside) < 2:
            return 0.0
        tb, cb = inside[-1]
        ta, ca = next(
            (
                (t, c)
                for t, c in inside
                if tb - t >= CYCLE_S and abs((tb - t) / CYCLE_S - round((tb - t) / CYCLE_S)) < 0.15
            ),
            inside[0],
        )
        return (cb - ca) / (tb - ta) if tb > ta else 0.0


class LineCounter(Marks):
    """The `<monotonic time> <count>` lines a raw client prints (CLOCK_MONOTONIC is one clock
    for every process on the machine)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        super().__init__()
        assert process.stdout is not None
        self._stdout = process.stdout
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._stdout:
            parts = line.split()
            if len(parts) == 2:
                self.set(int(parts[1]), float(parts[0]))


def agent_values(payload: bytes) -> int:
    """Readings in one of the agent's batches."""
    return len(json.loads(payload)["readings"])


META_FIELDS = frozenset({"Quality", "DataType"})


def telegraf_values(payload: bytes) -> int:
    """Values in one of Telegraf's JSON batches ({"metrics": [...]}): every field but the
    OPC UA plugins' quality and type fields (a Modbus metric carries a device's registers as
    fields, an OPC UA metric one node)."""
    document = json.loads(payload)
    metrics = document.get("metrics", [document])
    return sum(len(m["fields"].keys() - META_FIELDS) for m in metrics)


class MqttCounter(Marks):
    """Values published under a topic filter, counted as they arrive at a QoS 1 subscriber
    that connects as the stack's operator (TLS and password from `plantmesh stack env`)."""

    def __init__(self, mqtt_url: str, topic: str, values: Callable[[bytes], int]) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from plantmesh.mqtt_auth import apply_connection, connect_args

        super().__init__()
        self._values = values
        self.errors = 0
        self._ready = threading.Event()
        self._refused = ""
        conn, host, port = connect_args(mqtt_url)
        client_id = f"bench-counter-{os.getpid()}-{time.monotonic_ns()}"
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        apply_connection(self._client, conn)

        def on_connect(client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if reason.is_failure:
                self._refused = str(reason)
                self._ready.set()
            else:
                client.subscribe(topic, qos=1)

        self._client.on_connect = on_connect
        self._client.on_subscribe = lambda *_: self._ready.set()
        self._client.on_message = self._on_message
        self._client.connect(host, port)
        self._client.loop_start()
        if not self._ready.wait(10) or self._refused:
            self.close()
            why = self._refused or "no SUBACK within 10 s"
            raise RuntimeError(
                f"cannot subscribe at {mqtt_url}: {why} (for the local stack, run "
                f'`eval "$(.venv/bin/plantmesh stack env)"` first)'
            )

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        try:
            self.add(self._values(message.payload))
        except (ValueError, KeyError, TypeError, AttributeError):
            self.errors += 1

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


STEADY_LOOKBACK_S = 4.0
STEADY_TOLERANCE = 0.03
SHORT_STEADY_AFTER_S = 20.0
SUBSCRIPTION_WARMUP_S = 15.0
POLL_WARMUP_S = 6.0


def warm_up(
    process: subprocess.Popen[str],
    counter: Marks,
    expected_per_s: float,
    max_s: float,
    min_s: float,
) -> None:
    """At least `min_s` (SUBSCRIPTION_WARMUP_S for OPC UA subscriptions), and until the rate over the last 4 s holds within 3 % on two checks 2 s
    apart and is within 3 % of the expected rate (or 20 s have passed: a client that cannot
    keep up is measured at its own steady rate). Right after subscribing, asyncua's initial
    values trickle in for 10-15 s on top of the changes, in bursts the 4 s check can miss:
    measured then, a client shows 5-10 % more than the servers change."""
    began = time.monotonic()
    previous = -1.0
    while time.monotonic() - began < max_s:
        time.sleep(2.0)
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} during warm-up")
        now = time.monotonic()
        rate = counter.rate(now - STEADY_LOOKBACK_S, now)
        steady = rate > 0 and abs(rate - previous) <= STEADY_TOLERANCE * rate
        on_target = abs(rate - expected_per_s) <= STEADY_TOLERANCE * expected_per_s
        if now - began < min_s:
            continue
        if steady and (on_target or now - began >= SHORT_STEADY_AFTER_S):
            return
        previous = rate


@dataclass
class Measured:
    updates_per_s: float
    cpu_percent: float
    rss_mb: float
    hwm_mb: float
    server_cpu_percent: float
    server_lag_s: float


@contextmanager
def child(
    args: list[str],
    cwd: Path,
    log: Path,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """A child process with stdout piped (for counters and `ready` lines) and stderr to `log`;
    SIGTERM on the way out, SIGKILL if it does not end within 15 s."""
    with log.open("ab") as err:
        process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=err, text=True, cwd=cwd, env=env
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Server:
    """A server child: waits for `ready <ns>`, then keeps the latest `lag` lines."""

    def __init__(self, process: subprocess.Popen[str], what: str, log: Path) -> None:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        if len(line) != 2 or line[0] != "ready":
            raise RuntimeError(f"{what} did not start; see {log}")
        self.process = process
        self.namespace_index = int(line[1])
        self._lags: list[tuple[float, float]] = []
        self._stdout = process.stdout
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._stdout:
            parts = line.split()
            if len(parts) == 2 and parts[0] == "lag":
                self._lags.append((time.monotonic(), float(parts[1])))

    def worst_lag(self, t0: float, t1: float) -> float:
        return max((lag for at, lag in list(self._lags) if t0 <= at <= t1), default=0.0)


def measure(
    process: subprocess.Popen[str],
    counter: Marks,
    expected_per_s: float,
    warmup_max_s: float,
    window_s: float,
    servers: list[Server],
    min_warmup_s: float = POLL_WARMUP_S,
) -> Measured:
    """Wait for a steady rate (warm_up), then measure over `window_s`. A client that exits
    is an error, with its log."""
    warm_up(process, counter, expected_per_s, warmup_max_s, min_warmup_s)
    pids = [s.process.pid for s in servers]
    server0 = sum(cpu_seconds(pid) for pid in pids)
    # The whole tree: an agent with `workers: N` reads its sources in child processes.
    cpu0, t0 = tree_cpu_seconds(process.pid), time.monotonic()
    time.sleep(window_s)
    cpu1, t1 = tree_cpu_seconds(process.pid), time.monotonic()
    server1 = sum(cpu_seconds(pid) for pid in pids)
    rss, hwm = tree_memory_mb(process.pid)
    elapsed = t1 - t0
    return Measured(
        updates_per_s=counter.rate(t0, t1),
        cpu_percent=100 * (cpu1 - cpu0) / elapsed,
        rss_mb=rss,
        hwm_mb=hwm,
        server_cpu_percent=100 * (server1 - server0) / elapsed,
        server_lag_s=max((s.worst_lag(t0, t1) for s in servers), default=0.0),
    )
