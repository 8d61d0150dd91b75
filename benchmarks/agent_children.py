"""The child processes of bench_agent.py: bare servers and the raw library clients.

    python benchmarks/agent_children.py serve-opcua PORT FIRST_MACHINE MACHINES
    python benchmarks/agent_children.py serve-modbus PORT DEVICES REGISTERS
    python benchmarks/agent_children.py raw-opcua PORT:FIRST_MACHINE:MACHINES [...]
    python benchmarks/agent_children.py raw-modbus PORT DEVICES REGISTERS

Servers print `ready <namespace index>` once serving, then `lag <seconds>` once a second: how
late the most late slice of that second's writes started (so a row can show the server kept
up). Raw clients print `<monotonic time> <values received so far>` twice a second.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

VARS_PER_MACHINE = 10
NAMESPACE_URI = "urn:plantmesh:bench"
REPORT_EVERY_S = 0.5
SLICES = 10
"""A server writes its variables in this many slices spread over each second, as PLC scans
are, rather than all at once."""


def machine_name(index: int) -> str:
    return f"m{index:04}"


def node_names(first_machine: int, machines: int) -> list[str]:
    """String identifiers of one server's variables: m0000.v0 .. (distinct across servers so
    several servers make one plant of distinct machines)."""
    return [
        f"{machine_name(m)}.v{v}"
        for m in range(first_machine, first_machine + machines)
        for v in range(VARS_PER_MACHINE)
    ]


def string_id(identifier: str, namespace_index: int) -> Any:
    """ua.NodeId(s=identifier); asyncua annotates with its own str/int subclasses."""
    from asyncua import ua

    return ua.NodeId(ua.String(identifier), ua.Int16(namespace_index))


@dataclass(frozen=True)
class OpcuaShard:
    """One OPC UA server process and the machines it serves."""

    port: int
    first_machine: int
    machines: int

    @property
    def url(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/bench"

    @property
    def variables(self) -> int:
        return self.machines * VARS_PER_MACHINE

    def spec(self) -> str:
        return f"{self.port}:{self.first_machine}:{self.machines}"

    @classmethod
    def parse(cls, spec: str) -> OpcuaShard:
        port, first, count = (int(part) for part in spec.split(":"))
        return cls(port, first, count)


async def serve_opcua(port: int, first_machine: int, machines: int) -> None:
    """Objects/bench/area1/line1/mNNNN: 10 Double variables each, every one changed once a
    second."""
    from asyncua import ua
    from asyncua.server.server import Server

    logging.getLogger("asyncua").setLevel(logging.ERROR)
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/bench")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace(NAMESPACE_URI)
    line = await (
        await (await server.nodes.objects.add_folder(idx, "bench")).add_folder(idx, "area1")
    ).add_folder(idx, "line1")
    node_ids = []
    for m in range(first_machine, first_machine + machines):
        name = machine_name(m)
        machine = await line.add_object(string_id(name, idx), name)
        for v in range(VARS_PER_MACHINE):
            node_id = string_id(f"{name}.v{v}", idx)
            await machine.add_variable(node_id, f"v{v}", 0.0)
            node_ids.append(node_id)
    async with server:
        print(f"ready {idx}", flush=True)
        loop = asyncio.get_running_loop()
        due = loop.time()
        tick = 0
        while True:
            tick += 1
            worst = 0.0
            for part in range(SLICES):
                worst = max(worst, loop.time() - due)
                for node_id in node_ids[part::SLICES]:
                    value = ua.DataValue(ua.Variant(float(tick), ua.VariantType.Double))
                    await server.write_attribute_value(node_id, value)
                due += 1.0 / SLICES
                await asyncio.sleep(max(0.0, due - loop.time()))
            print(f"lag {worst:.3f}", flush=True)


async def serve_modbus(port: int, devices: int, registers: int) -> None:
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    logging.getLogger("pymodbus").setLevel(logging.ERROR)

    def blocks() -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
        return (
            [SimData(0, count=16, values=False, datatype=DataType.BITS)],
            [SimData(0, count=16, values=False, datatype=DataType.BITS)],
            [SimData(0, values=list(range(registers)), datatype=DataType.REGISTERS)],
            [SimData(0, count=registers, values=0, datatype=DataType.REGISTERS)],
        )

    units = [SimDevice(unit, simdata=blocks()) for unit in range(1, devices + 1)]
    server = ModbusTcpServer(units, address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    print("ready 0", flush=True)
    while True:  # registers do not change: the server's lag is always 0
        print("lag 0.000", flush=True)
        await asyncio.sleep(1.0)


class Counter:
    def __init__(self) -> None:
        self.count = 0

    async def report(self) -> None:
        while True:
            print(f"{time.monotonic():.3f} {self.count}", flush=True)
            await asyncio.sleep(REPORT_EVERY_S)


async def raw_opcua(shards: list[OpcuaShard]) -> None:
    """A minimal asyncua client: one connection and subscription per server, every variable,
    count the notifications."""
    from asyncua.client.client import Client

    logging.getLogger("asyncua").setLevel(logging.ERROR)
    counter = Counter()

    class Handler:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            counter.count += 1

    async def subscribe(shard: OpcuaShard) -> None:
        client = Client(shard.url)
        await client.connect()
        idx = await client.get_namespace_index(NAMESPACE_URI)
        names = node_names(shard.first_machine, shard.machines)
        nodes = [client.get_node(string_id(name, idx)) for name in names]
        subscription = await client.create_subscription(500, Handler())
        for start in range(0, len(nodes), 500):
            await subscription.subscribe_data_change(nodes[start : start + 500], queuesize=10)
        await asyncio.Event().wait()  # the process ends by SIGTERM

    async with asyncio.TaskGroup() as tg:
        for shard in shards:
            tg.create_task(subscribe(shard))
        tg.create_task(counter.report())


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


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    command, args = argv[0], argv[1:]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if command == "serve-opcua":
            asyncio.run(serve_opcua(*(int(a) for a in args)))
        elif command == "serve-modbus":
            asyncio.run(serve_modbus(*(int(a) for a in args)))
        elif command == "raw-opcua":
            asyncio.run(raw_opcua([OpcuaShard.parse(spec) for spec in args]))
        elif command == "raw-modbus":
            asyncio.run(raw_modbus(*(int(a) for a in args)))
        else:
            print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
            return 2
    except (KeyboardInterrupt, SystemExit):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
