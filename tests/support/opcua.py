"""OPC UA in tests: a small asyncua PLC, OPC UA source configs for it, a source running in this
event loop with its readings in a list, and a TCP proxy that can freeze a connection without
closing it (a cable pulled somewhere between agent and PLC)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from asyncua import Server, ua
from asyncua.common.node import Node

from edge_agent.config import OpcUaSourceConfig
from edge_agent.sources import decoding
from edge_agent.sources.opcua import OpcUaSource
from plantmesh.contracts import Reading

# asyncua's server warns about its own unsecured test endpoints on every start.
logging.getLogger("asyncua").setLevel(logging.ERROR)

NAMESPACE = "urn:plantmesh:test"
STEAM_ID = "Boiler.SteamPressure"


@dataclass
class Plc:
    endpoint: str
    vars: dict[str, Node]
    namespace_index: int


async def _eu(node: Node, unit: str) -> None:
    eu = ua.EUInformation()
    eu.DisplayName = ua.LocalizedText(unit)
    await node.add_property(0, "EngineeringUnits", eu)


async def build_plc(
    port: int, other_namespaces: int = 0, server: Server | None = None
) -> tuple[Server, Plc]:
    """Objects/Site/plant-a/pressing/line1/{press-01,press-02} with a few variables, and
    Objects/Site/utilities/boiler-01 with `steam_pressure` (string id Boiler.SteamPressure) and
    `level`. `other_namespaces` registers namespaces before ours, shifting its index the way a
    server restarted with another configuration would."""
    if server is None:
        server = Server()
        await server.init()
    endpoint = f"opc.tcp://127.0.0.1:{port}/plantmesh"
    server.set_endpoint(endpoint)
    for i in range(other_namespaces):
        await server.register_namespace(f"urn:someone:else:{i}")
    idx = await server.register_namespace(NAMESPACE)
    site = await server.nodes.objects.add_folder(idx, "Site")
    plant = await site.add_folder(idx, "plant-a")
    line = await (await plant.add_folder(idx, "pressing")).add_folder(idx, "line1")
    press1 = await line.add_object(idx, "press-01")
    press2 = await line.add_object(idx, "press-02")
    await press1.add_property(idx, "Manufacturer", "ACME")  # metadata, not a signal
    boiler = await (await site.add_folder(idx, "utilities")).add_object(idx, "boiler-01")
    nodes = {
        "press-01/temperature": await press1.add_variable(idx, "temperature", 20.0),
        "press-01/pressure": await press1.add_variable(idx, "pressure", 100.0),
        "press-01/state": await press1.add_variable(idx, "state", "idle"),
        "press-02/temperature": await press2.add_variable(idx, "temperature", 30.0),
        "boiler/steam": await boiler.add_variable(ua.NodeId(STEAM_ID, idx), "steam_pressure", 7.0),
        "boiler/level": await boiler.add_variable(idx, "level", 1.0),
    }
    await _eu(nodes["press-01/temperature"], "degC")
    await _eu(nodes["press-01/pressure"], "bar")
    await _eu(nodes["press-02/temperature"], "degC")
    return server, Plc(endpoint, nodes, idx)


@asynccontextmanager
async def serving(server: Server) -> AsyncIterator[None]:
    try:
        async with server:
            yield
    finally:
        # Server.stop() leaves the tasks of sessions whose client is still connected running.
        leftovers = [t for t in asyncio.all_tasks() if _is_asyncua_server_task(t)]
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.wait(leftovers, timeout=5)


@asynccontextmanager
async def opcua_plc(port: int) -> AsyncIterator[Plc]:
    server, plc = await build_plc(port)
    async with serving(server):
        yield plc


def _is_asyncua_server_task(task: asyncio.Task[object]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    return not task.done() and code is not None and "asyncua/server" in code.co_filename


def opc_source(endpoint: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "opcua",
        "name": "plc-opc",
        "endpoint": endpoint,
        "publishing_interval_ms": 50,
        "sampling_interval_ms": 0,
        "queue_size": 100,
        "browse": [{"root": "Site/plant-a"}],
        **extra,
    }


@asynccontextmanager
async def running_source(
    config: dict[str, Any], plant: str = "plant-a"
) -> AsyncIterator[tuple[OpcUaSource, list[Reading]]]:
    """The source's run() as a task, its readings appended to a list; cancelled on exit."""
    readings: list[Reading] = []
    source = OpcUaSource(OpcUaSourceConfig.model_validate(config), plant, decoding(readings.append))
    task = asyncio.create_task(source.run(), name="test-opcua-source")
    try:
        yield source, readings
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def values_of(readings: list[Reading], key: str) -> list[object]:
    return [r.value for r in of(readings, key)]


def of(readings: list[Reading], key: str) -> list[Reading]:
    """Readings of `machine/signal`."""
    return [r for r in list(readings) if f"{r.asset.machine}/{r.signal}" == key]


@dataclass
class FreezingProxy:
    """Forwards TCP to `target_port`. `freeze()` stops forwarding on the connections open at
    that moment (without closing them); later connections are forwarded normally."""

    target_port: int
    port: int = 0
    _frozen: set[asyncio.StreamWriter] = field(default_factory=set)
    _open: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set)
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def freeze(self) -> None:
        self._frozen.update(self._open)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._open.add(writer)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, writer)),
            asyncio.create_task(self._pump(up_reader, writer, writer)),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for w in (writer, up_writer):
            w.close()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client: asyncio.StreamWriter,
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if client in self._frozen:
                    await asyncio.Event().wait()  # holds the bytes until cancelled: a dead link
                writer.write(data)
                await writer.drain()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*self._handlers, return_exceptions=True)
        for writer in self._open:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@asynccontextmanager
async def freezing_proxy(target_port: int) -> AsyncIterator[FreezingProxy]:
    proxy = FreezingProxy(target_port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
