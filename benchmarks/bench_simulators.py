"""Simulator capacity: how many OPC UA variables at 1 Hz and how many Modbus devices (100
registers each) one simulator process serves before its updates lag.

    .venv/bin/python benchmarks/bench_simulators.py [--quick] [--only opcua|modbus]

(a) OPC UA: one plant of N/11 CNC mills (11 variables each, all changing every tick). For each
    size: the time one tick takes (machine models, events, writes into the address space) over
    20 ticks stepped back to back; then 1 Hz ticking for a few seconds with a client in another
    process subscribed to 50 variables, measuring how late each tick's value arrives after the
    tick was due (client-observed update delay). The reference, in the same run: a bare asyncua
    server writing N Double variables (write_attribute_value, nothing else) - the cost of the
    library alone.
(b) Modbus TCP: D devices, each a 100-register holding block (CNC mill signals spread over it),
    200 devices per server (a server addresses at most 247 unit ids), so larger sizes run
    several servers in the one process.
    For each size: the tick time as above; then 1 Hz ticking with four client connections in
    another process reading every device's 100 registers in turn, reporting full sweeps per
    second and whether a sweep fits in a tick. Reference: the same clients against a bare
    pymodbus SimDevice server (no simulator behind it) with the same devices.

"Lags" means: the tick takes longer than its 1 s period (tick overrun), or the client sees a
tick's values more than one period late. The largest size that does neither is the capacity.
The same file is also the client processes (--opcua-client, --modbus-client; internal).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PYTHON = sys.executable
TICK_S = 1.0
VARS_PER_MILL = 11
REGISTERS = 100
PER_SERVER = 200  # Modbus devices per server (plant); unit ids stop at 247
START = datetime(2026, 1, 1, tzinfo=UTC)

logging.getLogger("asyncua").setLevel(logging.ERROR)
logging.getLogger("pymodbus").setLevel(logging.ERROR)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# --- client processes -------------------------------------------------------------------------


async def opcua_client(url: str, nodes: list[str], seconds: float) -> None:
    """Subscribe, then print the arrival delay of every notification: arrival wall time minus
    the wall time its tick was due (the source timestamp maps to the tick)."""
    from asyncua import Client, ua

    logging.getLogger("asyncua").setLevel(logging.CRITICAL)  # a lost session is reported below
    arrivals: list[tuple[float, float]] = []  # (source ts as epoch, arrival epoch)
    status_changes = 0

    class Handler:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            ts = data.monitored_item.Value.SourceTimestamp
            arrivals.append((ts.timestamp(), time.time()))

        def status_change_notification(self, status: Any) -> None:
            nonlocal status_changes
            status_changes += 1

    async with Client(url, timeout=10) as client:
        idx = await client.get_namespace_index("urn:plantmesh:sim")
        subscription = await client.create_subscription(50, Handler())
        await subscription.subscribe_data_change(
            [client.get_node(ua.NodeId(n, idx)) for n in nodes]
        )
        print(json.dumps({"ready": True}), flush=True)
        await asyncio.sleep(seconds)
        await subscription.delete()
    print(json.dumps({"arrivals": arrivals, "status_changes": status_changes}), flush=True)


async def modbus_client(targets: list[list[int]], seconds: float, connections: int) -> None:
    """Read every (port, unit)'s 100 holding registers in turn, over `connections` connections
    per server; print reads/s and the time one connection takes for its share (a sweep)."""
    from pymodbus.client import AsyncModbusTcpClient

    reads = 0
    errors = 0
    sweep_times: list[float] = []
    by_port: dict[int, list[int]] = {}
    for port, unit in targets:
        by_port.setdefault(port, []).append(unit)
    work = []
    for port, units in by_port.items():
        for i in range(min(connections, len(units))):
            client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5)
            await client.connect()
            work.append((client, units[i::connections]))
    deadline = time.perf_counter() + seconds

    async def worker(client: AsyncModbusTcpClient, share: list[int]) -> None:
        nonlocal reads, errors
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            for unit in share:
                response = await client.read_holding_registers(0, count=REGISTERS, device_id=unit)
                reads += 1
                errors += response.isError()
            sweep_times.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(worker(c, share) for c, share in work))
    elapsed = time.perf_counter() - began
    for client, _ in work:
        client.close()
    print(json.dumps({"reads_per_s": reads / elapsed, "errors": errors, "sweeps": sweep_times}))


def start_client(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen([PYTHON, __file__, *argv], stdout=subprocess.PIPE, text=True, cwd=REPO)


async def client_result(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = await asyncio.to_thread(process.communicate, timeout=120)
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    return lines[-1]


async def wait_ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    line = await asyncio.to_thread(process.stdout.readline)
    if "ready" not in line:
        raise RuntimeError(f"client failed to start: {line!r}")


# --- the simulator under test -----------------------------------------------------------------


def opcua_network(variables: int) -> Any:
    from simulators import NetworkConfig

    machines = [
        {"id": f"mill-{m:04}", "area": "machining", "line": f"line{m // 50}",
         "class": "cnc_mill", "protocol": "opcua"}
        for m in range(max(1, variables // VARS_PER_MILL))
    ]  # fmt: skip
    return NetworkConfig.model_validate(
        {"tick_s": TICK_S, "plants": [{"id": "bench", "opcua": {"port": 0}, "machines": machines}]}
    )


def modbus_profile() -> Any:
    from plantmesh.modbus_profile import DeviceProfile

    signals = ["speed", "motor_current", "bearing_temp", "vibration_rms", "spindle_load", "torque"]
    registers: list[dict[str, Any]] = [
        {"signal": name, "address": 2 * i, "type": "float32"} for i, name in enumerate(signals)
    ]
    registers += [
        {"signal": "good_parts", "address": 20, "type": "uint32"},
        {"signal": "scrap_parts", "address": 22, "type": "uint16"},
        {"signal": "state", "address": 50, "type": "uint16"},
        {"signal": "alarm_word", "address": REGISTERS - 1, "type": "uint16"},
    ]
    return DeviceProfile.model_validate({"name": "cnc_mill", "registers": registers})


def unit_plan(devices: int) -> list[tuple[int, int]]:
    """(server, unit id) per device: a Modbus server addresses at most 247 units, so larger
    sizes take several servers (plants) in the one process."""
    return [(d // PER_SERVER, d % PER_SERVER + 1) for d in range(devices)]


def modbus_network(devices: int) -> Any:
    from simulators import NetworkConfig

    profile = modbus_profile()
    plants: dict[int, list[dict[str, Any]]] = {}
    for server, unit in unit_plan(devices):
        plants.setdefault(server, []).append(
            {"id": f"mill-{unit:03}", "area": "machining", "line": "line1", "class": "cnc_mill",
             "protocol": "modbus", "unit_id": unit, "profile": profile}
        )  # fmt: skip
    return NetworkConfig.model_validate(
        {
            "tick_s": TICK_S,
            "plants": [
                {"id": f"bench-{s}", "modbus": {"port": 0}, "machines": machines}
                for s, machines in plants.items()
            ],
        }
    )


async def tick_times(sim: Any, ticks: int) -> list[float]:
    for _ in range(3):  # warm-up: first writes allocate, first encodes fill caches
        await sim.step()
    times = []
    for _ in range(ticks):
        began = time.perf_counter()
        await sim.step()
        times.append(time.perf_counter() - began)
    return times


async def tick_at_1hz(sim: Any, seconds: float, due_at: dict[int, float]) -> None:
    """Tick every TICK_S of wall time; remember when each tick was due (epoch seconds)."""
    loop = asyncio.get_running_loop()
    due = loop.time() + TICK_S
    end = loop.time() + seconds
    while due <= end:
        await asyncio.sleep(max(0.0, due - loop.time()))
        due_at[sim.tick + 1] = time.time() - (loop.time() - due)
        await sim.step()
        due += TICK_S


async def bench_opcua(variables: int, seconds: float) -> dict[str, Any]:
    from simulators import Simulation

    sim = Simulation(opcua_network(variables), start=START)
    began = time.perf_counter()
    async with sim.serving():
        setup_s = time.perf_counter() - began
        steps = await tick_times(sim, 20)
        url = sim.endpoints()["bench"].opcua_url
        sample = [
            f"bench/machining/line{m // 50}/mill-{m:04}/bearing_temp"
            for m in range(0, max(1, variables // VARS_PER_MILL), max(1, variables // 550))
        ][:50]
        client = start_client("--opcua-client", url or "", json.dumps(sample), str(seconds + 2))
        await wait_ready(client)
        due_at: dict[int, float] = {}
        first_tick = sim.tick + 1
        await tick_at_1hz(sim, seconds, due_at)
        result = await client_result(client)
    start_epoch = START.timestamp()
    delays = []
    for source, arrival in result["arrivals"]:
        tick = round((source - start_epoch) / TICK_S)
        if tick >= first_tick and tick in due_at:
            delays.append(arrival - due_at[tick])
    return {
        "variables": len(sim.machines) * VARS_PER_MILL,
        "setup_s": setup_s,
        "tick_mean_s": statistics.fmean(steps),
        "tick_p95_s": percentile(steps, 0.95),
        "delay_p50_s": statistics.median(delays) if delays else float("nan"),
        "delay_max_s": max(delays) if delays else float("nan"),
    }


async def bare_asyncua_write_s(variables: int) -> float:
    """Reference: a plain asyncua server writing N Double variables once (mean of 5 rounds)."""
    from asyncua import Server, ua

    server = Server()
    await server.init()
    server.set_endpoint("opc.tcp://127.0.0.1:0/bare")
    idx = await server.register_namespace("urn:bench:bare")
    folder = await server.nodes.objects.add_folder(idx, "bare")
    nodes = [
        (await folder.add_variable(ua.NodeId(f"v{i}", idx), f"v{i}", 0.0)).nodeid
        for i in range(variables)
    ]
    rounds = []
    for r in range(5):
        began = time.perf_counter()
        for i, node in enumerate(nodes):
            await server.write_attribute_value(
                node, ua.DataValue(ua.Variant(float(r + i), ua.VariantType.Double))
            )
        rounds.append(time.perf_counter() - began)
    return statistics.fmean(rounds)


async def bench_modbus(devices: int, seconds: float) -> dict[str, Any]:
    from simulators import Simulation

    sim = Simulation(modbus_network(devices), start=START)
    async with sim.serving():
        steps = await tick_times(sim, 20)
        ports = {p: e.modbus_port for p, e in sim.endpoints().items()}
        targets = [[ports[f"bench-{s}"], unit] for s, unit in unit_plan(devices)]
        client = start_client("--modbus-client", json.dumps(targets), str(seconds), "4")
        await tick_at_1hz(sim, seconds + 1, {})
        result = await client_result(client)
    sweeps = result["sweeps"]
    return {
        "devices": devices,
        "tick_mean_s": statistics.fmean(steps),
        "tick_p95_s": percentile(steps, 0.95),
        "reads_per_s": result["reads_per_s"],
        "errors": result["errors"],
        "sweep_p95_s": percentile(sweeps, 0.95) if sweeps else float("nan"),
    }


async def bare_pymodbus_reads_per_s(devices: int, seconds: float) -> float:
    """Reference: the same clients against plain pymodbus SimDevices (no simulator)."""
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    def device(unit: int) -> SimDevice:
        bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
        holding = [SimData(0, values=[unit] * REGISTERS, datatype=DataType.REGISTERS)]
        return SimDevice(id=unit, simdata=(bits, bits, holding, holding))

    plan = unit_plan(devices)
    servers, targets = [], []
    for index in sorted({s for s, _ in plan}):
        units = [u for s, u in plan if s == index]
        server = ModbusTcpServer([device(u) for u in units], address=("127.0.0.1", 0))
        await server.serve_forever(background=True)
        port = int(server.transport.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        servers.append(server)
        targets += [[port, u] for u in units]
    client = start_client("--modbus-client", json.dumps(targets), str(seconds), "4")
    result = await client_result(client)
    for server in servers:
        await server.shutdown()  # type: ignore[no-untyped-call]
    return float(result["reads_per_s"])


def verdict(tick_p95: float, late: float) -> str:
    return "lags" if tick_p95 > TICK_S or late > TICK_S else "keeps up"


async def main(quick: bool, only: str | None) -> None:
    opcua_sizes = [1_000, 3_000] if quick else [1_000, 2_500, 5_000, 7_500, 10_000]
    modbus_sizes = [10, 50] if quick else [10, 50, 100, 200, 400, 800, 1_600]
    if only == "opcua":
        modbus_sizes = []
    elif only == "modbus":
        opcua_sizes = []
    seconds = 4.0 if quick else 8.0
    print(f"simulator capacity at {1 / TICK_S:g} Hz ({'quick' if quick else 'full'} run)\n")
    print("(a) OPC UA: variables all changing every tick")
    print(
        f"{'variables':>9} {'setup s':>8} {'tick mean':>9} {'tick p95':>9} "
        f"{'bare write':>10} {'delay p50':>9} {'delay max':>9}  verdict"
    )
    for size in opcua_sizes:
        row = await bench_opcua(size, seconds)
        bare = await bare_asyncua_write_s(row["variables"])
        print(
            f"{row['variables']:>9} {row['setup_s']:>8.1f} {row['tick_mean_s']:>9.3f} "
            f"{row['tick_p95_s']:>9.3f} {bare:>10.3f} {row['delay_p50_s']:>9.3f} "
            f"{row['delay_max_s']:>9.3f}  {verdict(row['tick_p95_s'], row['delay_max_s'])}"
        )
    print("    tick: one simulator tick (s); bare write: asyncua alone writing as many variables;")
    print("    delay: tick due -> notification at a client in another process (s)\n")
    print(
        f"(b) Modbus TCP: devices of {REGISTERS} holding registers, {PER_SERVER} per server, "
        "4 client connections per server"
    )
    print(
        f"{'devices':>7} {'tick mean':>9} {'tick p95':>9} {'reads/s':>8} {'bare reads/s':>12} "
        f"{'sweep p95':>9}  verdict"
    )
    for size in modbus_sizes:
        row = await bench_modbus(size, seconds)
        bare = await bare_pymodbus_reads_per_s(size, seconds)
        print(
            f"{row['devices']:>7} {row['tick_mean_s']:>9.3f} {row['tick_p95_s']:>9.3f} "
            f"{row['reads_per_s']:>8.0f} {bare:>12.0f} {row['sweep_p95_s']:>9.3f}  "
            f"{verdict(row['tick_p95_s'], row['sweep_p95_s'])}"
        )
    print("    sweep: one connection reading its share of the devices once (s); a sweep longer")
    print("    than a tick means a client polling every device misses updates")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, short runs")
    parser.add_argument("--only", choices=["opcua", "modbus"], help="run one half only")
    parser.add_argument("--opcua-client", nargs=3, metavar=("URL", "NODES", "SECONDS"))
    parser.add_argument("--modbus-client", nargs=3, metavar=("TARGETS", "SECONDS", "CONN"))
    args = parser.parse_args()
    if args.opcua_client:
        url, nodes, secs = args.opcua_client
        asyncio.run(opcua_client(url, json.loads(nodes), float(secs)))
    elif args.modbus_client:
        targets, secs, conns = args.modbus_client
        asyncio.run(modbus_client(json.loads(targets), float(secs), int(conns)))
    else:
        asyncio.run(main(args.quick, args.only))
