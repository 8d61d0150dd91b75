"""Edge agent benchmark: tag updates per second, CPU share of one core and resident memory.

    .venv/bin/python benchmarks/bench_agent.py [--quick] [--mqtt-url mqtt://127.0.0.1:11883]

Two scenarios, each against a server in its own process:
  (a) OPC UA: subscriptions on 10,000 variables changing at 1 Hz (--quick: 1,000)
  (b) Modbus TCP: 100 devices with 100 holding registers each, polled at 1 Hz (--quick: 10)
For each, our agent (`python -m edge_agent run`, publishing to MQTT with its disk buffer) and a
raw client doing the same reads (asyncua subscription / pymodbus polls, counting values and
doing nothing else) run one after the other against the same server, each in its own process.
Updates/s for the agent are the readings that arrive over MQTT; for the raw clients, the values
they received. CPU comes from /proc/<pid>/stat (utime + stime over the measuring window), memory
from /proc/<pid>/status (VmRSS at the end, VmHWM the peak). Targets for the agent: under 35 % of
one core and under 100 MB resident.

The same file is also each child process: --serve-opcua, --serve-modbus, --raw-opcua,
--raw-modbus (internal; the orchestrator starts them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plantmesh.connections import DEFAULT_MQTT_URL

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
VARS_PER_MACHINE = 10
NAMESPACE_URI = "urn:plantmesh:bench"
REPORT_EVERY_S = 0.5

# ---------------------------------------------------------------------------------------------
# child processes


async def serve_opcua(port: int, count: int) -> None:
    """Objects/bench/area1/line1/m0000..: 10 Double variables each, every one changed once a
    second (spread over the second, as PLC scans are)."""
    import logging

    from asyncua import Server, ua

    logging.getLogger("asyncua").setLevel(logging.ERROR)
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/bench")
    idx = await server.register_namespace(NAMESPACE_URI)
    line = await (
        await (await server.nodes.objects.add_folder(idx, "bench")).add_folder(idx, "area1")
    ).add_folder(idx, "line1")
    node_ids = []
    for m in range(count // VARS_PER_MACHINE):
        machine = await line.add_object(ua.NodeId(f"m{m:04}", idx), f"m{m:04}")
        for v in range(VARS_PER_MACHINE):
            node_id = ua.NodeId(f"m{m:04}.v{v}", idx)
            await machine.add_variable(node_id, f"v{v}", 0.0)
            node_ids.append(node_id)
    async with server:
        print("ready", flush=True)
        tick = 0
        slices = 10
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            tick += 1
            for part in range(slices):
                for node_id in node_ids[part::slices]:
                    value = ua.DataValue(ua.Variant(float(tick), ua.VariantType.Double))
                    await server.write_attribute_value(node_id, value)
                due += 1.0 / slices
                await asyncio.sleep(max(0.0, due - loop.time()))


async def serve_modbus(port: int, devices: int, registers: int) -> None:
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    def blocks() -> list[list[SimData]]:
        return [
            [SimData(0, count=16, values=False, datatype=DataType.BITS)],
            [SimData(0, count=16, values=False, datatype=DataType.BITS)],
            [SimData(0, values=list(range(registers)), datatype=DataType.REGISTERS)],
            [SimData(0, count=registers, values=0, datatype=DataType.REGISTERS)],
        ]

    units = [SimDevice(unit, simdata=tuple(blocks())) for unit in range(1, devices + 1)]
    server = ModbusTcpServer(units, address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    print("ready", flush=True)
    await asyncio.Event().wait()


class Counter:
    def __init__(self) -> None:
        self.count = 0

    async def report(self) -> None:
        while True:
            print(f"{time.monotonic():.3f} {self.count}", flush=True)
            await asyncio.sleep(REPORT_EVERY_S)


async def raw_opcua(url: str, count: int) -> None:
    """A minimal asyncua client: one subscription, every variable, count the notifications."""
    import logging

    from asyncua import Client, ua

    logging.getLogger("asyncua").setLevel(logging.ERROR)
    counter = Counter()

    class Handler:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            counter.count += 1

    async with Client(url) as client:
        idx = await client.get_namespace_index(NAMESPACE_URI)
        nodes = [
            client.get_node(ua.NodeId(f"m{m:04}.v{v}", idx))
            for m in range(count // VARS_PER_MACHINE)
            for v in range(VARS_PER_MACHINE)
        ]
        subscription = await client.create_subscription(500, Handler())
        for start in range(0, len(nodes), 500):
            await subscription.subscribe_data_change(nodes[start : start + 500], queuesize=10)
        await counter.report()


async def raw_modbus(port: int, devices: int, registers: int) -> None:
    """A minimal pymodbus client: one connection per device, each read once a second."""
    from pymodbus.client import AsyncModbusTcpClient

    counter = Counter()

    async def poll(unit: int) -> None:
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        await client.connect()
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            response = await client.read_holding_registers(0, count=registers, device_id=unit)
            if not response.isError():
                counter.count += len(response.registers)
            due += 1.0
            await asyncio.sleep(max(0.0, due - loop.time()))

    async with asyncio.TaskGroup() as tg:
        for unit in range(1, devices + 1):
            tg.create_task(poll(unit))
        tg.create_task(counter.report())


# ---------------------------------------------------------------------------------------------
# measuring


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Result:
    scenario: str
    client: str
    expected_per_s: float
    updates_per_s: float
    cpu_percent: float
    rss_mb: float
    hwm_mb: float


class LineCounter:
    """The latest `<time> <count>` line a raw client printed."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.count = 0
        assert process.stdout is not None
        self._stdout = process.stdout
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stdout:
            parts = line.split()
            if len(parts) == 2:
                self.count = int(parts[1])


class MqttCounter:
    """Readings the agent published, counted as they arrive at a subscriber."""

    def __init__(self, mqtt_url: str, namespace: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from plantmesh.connections import MqttConnection
        from plantmesh.topics import Topics

        settings = MqttConnection(url=mqtt_url)
        self.count = 0
        self._ready = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{namespace}")
        topic = Topics(namespace).mqtt_readings_filter
        self._client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *_: self._ready.set()
        self._client.on_message = self._on_message
        self._client.connect(settings.host, settings.port)
        self._client.loop_start()
        if not self._ready.wait(10):
            raise RuntimeError(f"no SUBACK from {mqtt_url}")

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        self.count += len(json.loads(message.payload)["readings"])

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@contextmanager
def child(args: list[str], wait_ready: bool = False) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, text=True, cwd=REPO, stderr=subprocess.DEVNULL
    )
    try:
        if wait_ready:
            assert process.stdout is not None
            line = process.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"{args[2:]} did not start")
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(
    process: subprocess.Popen[str],
    counter: LineCounter | MqttCounter,
    expected_per_s: float,
    warmup_max_s: float,
    window_s: float,
) -> tuple[float, float, float, float]:
    """Wait until the client delivers about the expected rate (subscriptions and connections
    set up), then measure over `window_s`: (updates/s, CPU % of one core, RSS MB, HWM MB)."""
    began = time.monotonic()
    last = counter.count
    while time.monotonic() - began < warmup_max_s:
        time.sleep(2.0)
        now = counter.count
        if now - last >= 0.8 * 2.0 * expected_per_s:
            break
        last = now
    count0, cpu0, t0 = counter.count, cpu_seconds(process.pid), time.monotonic()
    time.sleep(window_s)
    count1, cpu1, t1 = counter.count, cpu_seconds(process.pid), time.monotonic()
    rss, hwm = memory_mb(process.pid)
    elapsed = t1 - t0
    return (count1 - count0) / elapsed, 100 * (cpu1 - cpu0) / elapsed, rss, hwm


def agent_config(
    directory: Path, mqtt_url: str, namespace: str, sources: list[dict[str, Any]]
) -> Path:
    import yaml

    config = {
        "gateway_id": "gw-bench",
        "plant": "bench",
        "namespace": namespace,
        "mqtt": {"url": mqtt_url, "client_id": f"agent-{namespace}"},
        "publish_interval_s": 1.0,
        "max_readings_per_batch": 1000,
        "buffer": {"kind": "disk", "path": str(directory / "buffer.sqlite")},
        "sources": sources,
    }
    path = directory / f"agent-{namespace}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_agent(
    config: Path, mqtt_url: str, namespace: str, expected: float, warmup: float, window: float
) -> tuple[float, float, float, float]:
    counter = MqttCounter(mqtt_url, namespace)
    try:
        args = [PYTHON, "-m", "edge_agent", "run", "--config", str(config)]
        with child(args) as process:
            return measure(process, counter, expected, warmup, window)
    finally:
        counter.close()


def run_raw(args: list[str], expected: float, warmup: float, window: float) -> tuple[float, ...]:
    with child([PYTHON, __file__, *args]) as process:
        return measure(process, LineCounter(process), expected, warmup, window)


def opcua_scenario(
    variables: int, mqtt_url: str, directory: Path, warmup: float, window: float
) -> list[Result]:
    port = free_port()
    url = f"opc.tcp://127.0.0.1:{port}/bench"
    name = f"(a) OPC UA {variables:,} vars @1 Hz"
    results = []
    with child([PYTHON, __file__, "--serve-opcua", str(port), str(variables)], wait_ready=True):
        namespace = f"bench-{uuid.uuid4().hex[:8]}"
        source = {
            "type": "opcua",
            "name": "bench-opc",
            "endpoint": url,
            "publishing_interval_ms": 500,
            "queue_size": 10,
            "browse": [{"root": "bench"}],
        }
        config = agent_config(directory, mqtt_url, namespace, [source])
        agent = run_agent(config, mqtt_url, namespace, variables, warmup, window)
        results.append(Result(name, "plantmesh agent (-> MQTT)", variables, *agent))
        raw = run_raw(["--raw-opcua", url, str(variables)], variables, warmup, window)
        results.append(Result(name, "raw asyncua client", variables, *raw))
    return results


def modbus_scenario(
    devices: int, registers: int, mqtt_url: str, directory: Path, warmup: float, window: float
) -> list[Result]:
    import yaml

    port = free_port()
    expected = devices * registers
    name = f"(b) Modbus {devices} dev x {registers} regs @1 Hz"
    profile = {
        "name": "bench_device",
        "registers": [{"signal": f"r{i:03}", "address": i} for i in range(registers)],
    }
    profile_path = directory / "bench_device.yaml"
    profile_path.write_text(yaml.safe_dump(profile))
    results = []
    with child([PYTHON, __file__, "--serve-modbus", str(port), str(devices), str(registers)], True):
        namespace = f"bench-{uuid.uuid4().hex[:8]}"
        source = {
            "type": "modbus",
            "name": "bench-modbus",
            "host": "127.0.0.1",
            "port": port,
            "timeout_s": 2.0,
            "devices": [
                {
                    "unit_id": unit,
                    "profile": str(profile_path),
                    "area": "area1",
                    "line": "line1",
                    "machine": f"dev{unit:03}",
                    "poll_interval_s": 1.0,
                }
                for unit in range(1, devices + 1)
            ],
        }
        config = agent_config(directory, mqtt_url, namespace, [source])
        agent = run_agent(config, mqtt_url, namespace, expected, warmup, window)
        results.append(Result(name, "plantmesh agent (-> MQTT)", expected, *agent))
        args = ["--raw-modbus", str(port), str(devices), str(registers)]
        raw = run_raw(args, expected, warmup, window)
        results.append(Result(name, "raw pymodbus client", expected, *raw))
    return results


def table(results: list[Result]) -> str:
    header = (
        f"{'scenario':<36}{'client':<28}{'expected/s':>11}{'updates/s':>11}"
        f"{'CPU % core':>11}{'RSS MB':>8}{'peak MB':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.scenario:<36}{r.client:<28}{r.expected_per_s:>11,.0f}{r.updates_per_s:>11,.0f}"
            f"{r.cpu_percent:>11.1f}{r.rss_mb:>8.1f}{r.hwm_mb:>9.1f}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 variables, 10 devices")
    parser.add_argument(
        "--mqtt-url", default=os.environ.get("PLANTMESH_MQTT_URL", DEFAULT_MQTT_URL)
    )
    parser.add_argument("--window", type=float, help="measuring window in seconds")
    parser.add_argument("--only", choices=["opcua", "modbus"])
    parser.add_argument("--serve-opcua", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-modbus", nargs=3, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--raw-opcua", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--raw-modbus", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if args.serve_opcua:
            asyncio.run(serve_opcua(*args.serve_opcua))
            return 0
        if args.serve_modbus:
            asyncio.run(serve_modbus(*args.serve_modbus))
            return 0
        if args.raw_opcua:
            asyncio.run(raw_opcua(args.raw_opcua[0], int(args.raw_opcua[1])))
            return 0
        if args.raw_modbus:
            asyncio.run(raw_modbus(*args.raw_modbus))
            return 0
    except (KeyboardInterrupt, SystemExit):
        return 0

    variables, devices = (1_000, 10) if args.quick else (10_000, 100)
    window = args.window or (10.0 if args.quick else 30.0)
    warmup = 60.0 if args.quick else 180.0
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        if args.only in (None, "opcua"):
            results += opcua_scenario(variables, args.mqtt_url, Path(tmp), warmup, window)
        if args.only in (None, "modbus"):
            results += modbus_scenario(devices, 100, args.mqtt_url, Path(tmp), warmup, window)
    print(
        f"\nedge agent benchmark ({'quick' if args.quick else 'full'}, {window:g} s window,"
        f" {os.cpu_count()} cores)"
    )
    print(table(results))
    print("targets for the agent: CPU under 35 % of one core, RSS under 100 MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
