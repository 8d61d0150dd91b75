from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from asyncua import Server, ua
from asyncua.common.node import Node

from edge_agent.sources.opcua import OpcUaSource
from plantmesh.contracts import Quality, Reading, ReadingBatch
from plantmesh.topics import Topics
from tests.integration.test_agent_support import agent_config, free_port, running, subscribed
from tests.waiting import async_wait_for

pytestmark = pytest.mark.integration

# asyncua's server warns about its own unsecured test endpoints on every start.
logging.getLogger("asyncua").setLevel(logging.ERROR)


@dataclass
class Plc:
    endpoint: str
    vars: dict[str, Node]


async def _eu(node: Node, unit: str) -> None:
    eu = ua.EUInformation()
    eu.DisplayName = ua.LocalizedText(unit)
    await node.add_property(0, "EngineeringUnits", eu)


@asynccontextmanager
async def opcua_plc(port: int) -> AsyncIterator[Plc]:
    server, plc = await build_plc(port)
    async with serving(server):
        yield plc


async def build_plc(port: int) -> tuple[Server, Plc]:
    """Objects/Site/plant-a/pressing/line1/{press-01,press-02} with a few variables. Building the
    address space takes a second or two; serving it is instant."""
    server = Server()
    await server.init()
    endpoint = f"opc.tcp://127.0.0.1:{port}/plantmesh"
    server.set_endpoint(endpoint)
    idx = await server.register_namespace("urn:plantmesh:test")
    site = await server.nodes.objects.add_folder(idx, "Site")
    plant = await site.add_folder(idx, "plant-a")
    line = await (await plant.add_folder(idx, "pressing")).add_folder(idx, "line1")
    press1 = await line.add_object(idx, "press-01")
    press2 = await line.add_object(idx, "press-02")
    await press1.add_property(idx, "Manufacturer", "ACME")  # metadata, not a signal
    nodes = {
        "press-01/temperature": await press1.add_variable(idx, "temperature", 20.0),
        "press-01/pressure": await press1.add_variable(idx, "pressure", 100.0),
        "press-01/state": await press1.add_variable(idx, "state", "idle"),
        "press-02/temperature": await press2.add_variable(idx, "temperature", 30.0),
    }
    await _eu(nodes["press-01/temperature"], "degC")
    await _eu(nodes["press-01/pressure"], "bar")
    await _eu(nodes["press-02/temperature"], "degC")
    return server, Plc(endpoint, nodes)


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


def _is_asyncua_server_task(task: asyncio.Task[object]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    return not task.done() and code is not None and "asyncua/server" in code.co_filename


def opc_source(endpoint: str, **extra: object) -> dict[str, object]:
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


def readings_of(batches: list[ReadingBatch], key: str) -> list[Reading]:
    return [r for b in batches for r in b.readings if f"{r.asset.machine}/{r.signal}" == key]


async def test_browse_root_streams_every_change_with_units_and_source_timestamps(
    mqtt_url: str, namespace: str
) -> None:
    topics = Topics(namespace)
    async with opcua_plc(free_port()) as plc:
        config = agent_config(
            mqtt_url,
            namespace,
            # A node that does not exist must not stop the browsed ones.
            [
                opc_source(
                    plc.endpoint,
                    nodes=[
                        {
                            "node_id": "ns=2;s=does.not.exist",
                            "area": "a",
                            "line": "l",
                            "machine": "m",
                            "signal": "ghost",
                        }
                    ],
                )
            ],
        )
        with subscribed(mqtt_url, topics.mqtt_readings_filter) as recorder:
            async with running(config) as agent:
                source = agent.sources[0]
                assert isinstance(source, OpcUaSource)

                async def initial_values() -> bool:
                    return (
                        source.subscribed == 4
                        and len({r.series_key for b in recorder.batches() for r in b.readings}) == 4
                    )

                await async_wait_for(initial_values, 20, "initial values of the 4 variables")
                assert source.state.errors >= 1  # the ghost node, counted

                t0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
                written = [21.0 + i for i in range(10)]
                for i, value in enumerate(written):
                    ts = t0 + timedelta(milliseconds=i)
                    await plc.vars["press-01/temperature"].write_value(
                        ua.DataValue(ua.Variant(value, ua.VariantType.Double), SourceTimestamp=ts)
                    )
                await plc.vars["press-02/temperature"].write_value(
                    ua.DataValue(
                        ua.Variant(99.0, ua.VariantType.Double),
                        StatusCode=ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue),
                        SourceTimestamp=t0,
                    )
                )
                await plc.vars["press-01/state"].write_value("running")

                async def all_changes() -> bool:
                    batches = recorder.batches()
                    return (
                        len(readings_of(batches, "press-01/temperature")) >= 11
                        and len(readings_of(batches, "press-02/temperature")) >= 2
                        and len(readings_of(batches, "press-01/state")) >= 2
                    )

                await async_wait_for(all_changes, 20, "every written value")

        batches = recorder.batches()
        temps = readings_of(batches, "press-01/temperature")
        assert [r.value for r in temps] == [20.0, *written]  # initial value, then every change
        assert [r.source_ts for r in temps[1:]] == [
            t0 + timedelta(milliseconds=i) for i in range(10)
        ]
        assert {r.unit for r in temps} == {"degC"}
        assert {r.unit for r in readings_of(batches, "press-01/pressure")} == {"bar"}
        state = readings_of(batches, "press-01/state")
        assert [r.value for r in state] == ["idle", "running"]
        assert state[0].unit is None
        uncertain = readings_of(batches, "press-02/temperature")[-1]
        assert uncertain.value == 99.0
        assert uncertain.status_code == ua.StatusCodes.UncertainLastUsableValue
        assert uncertain.quality == Quality.UNCERTAIN
        assert all(r.quality == Quality.GOOD for r in temps)
        assert all(r.gateway_ts >= r.source_ts for r in temps)
        assert all(
            r.asset.key.startswith("plant-a/pressing/line1/") for b in batches for r in b.readings
        )
        assert not any(r.signal == "Manufacturer" for b in batches for r in b.readings)
        # one session, consecutive sequence numbers, one machine per batch
        assert {b.session_id for b in batches} == {agent.session_id}
        assert [b.seq for b in batches] == list(range(len(batches)))
        assert all(len({r.asset for r in b.readings}) == 1 for b in batches)


async def test_reconnects_and_resubscribes_after_the_server_restarts(
    mqtt_url: str, namespace: str
) -> None:
    port = free_port()
    topics = Topics(namespace)
    config = agent_config(
        mqtt_url, namespace, [opc_source(f"opc.tcp://127.0.0.1:{port}/plantmesh")]
    )
    first = opcua_plc(port)
    plc = await first.__aenter__()
    try:
        with subscribed(mqtt_url, topics.mqtt_readings_filter) as recorder:
            async with running(config) as agent:
                source = agent.sources[0]
                assert isinstance(source, OpcUaSource)

                async def sessions(n: int) -> bool:
                    return source.sessions == n and source.state.connected

                async def seen(value: float) -> bool:
                    return any(r.value == value for b in recorder.batches() for r in b.readings)

                await async_wait_for(lambda: sessions(1), 20, "the first session")
                await plc.vars["press-01/pressure"].write_value(101.0)
                await async_wait_for(lambda: seen(101.0), 20, "101 bar")
                second, plc = await build_plc(port)  # the restarted PLC, ready to serve

                await first.__aexit__(None, None, None)
                first = None

                async def disconnected() -> bool:
                    return not source.state.connected

                await async_wait_for(disconnected, 20, "the agent to notice the server is gone")
                async with serving(second):
                    await async_wait_for(lambda: sessions(2), 30, "a new session after restart")
                    await plc.vars["press-01/pressure"].write_value(202.0)
                    await async_wait_for(lambda: seen(202.0), 20, "202 bar after the restart")
                    assert source.state.errors >= 1
    finally:
        if first is not None:
            await first.__aexit__(None, None, None)
    batches = recorder.batches()
    assert [b.seq for b in batches] == list(range(len(batches)))
