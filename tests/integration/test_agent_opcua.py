"""The OPC UA source against real asyncua servers: browsing, units, timestamps, Bad nodes,
and the supervisor (server restart on the same port, a connection that goes silent)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from asyncua import ua
from asyncua.ua.status_codes import StatusCodes

from plantmesh.contracts import Quality
from tests.support.opcua import (
    NAMESPACE,
    STEAM_ID,
    build_plc,
    freezing_proxy,
    of,
    opc_source,
    opcua_plc,
    running_source,
    serving,
    values_of,
)
from tests.support.ports import free_port
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

GHOST = {"node_id": "ns=2;s=does.not.exist", "area": "a", "line": "l", "machine": "m"}


async def test_browse_root_streams_every_change_with_units_and_source_timestamps() -> None:
    async with opcua_plc(free_port()) as plc:
        # A node that does not exist must not stop the browsed ones.
        config = opc_source(plc.endpoint, nodes=[{**GHOST, "signal": "ghost"}])
        async with running_source(config) as (source, readings):

            async def initial_values() -> bool:
                return source.subscribed == 4 and len({r.series_key for r in readings}) == 5

            await async_wait_for(initial_values, 20, "initial values of the 4 variables + ghost")
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
                    StatusCode=ua.StatusCode(StatusCodes.UncertainLastUsableValue),
                    SourceTimestamp=t0,
                )
            )
            await plc.vars["press-01/state"].write_value("running")

            async def all_changes() -> bool:
                return (
                    len(of(readings, "press-01/temperature")) >= 11
                    and len(of(readings, "press-02/temperature")) >= 2
                    and len(of(readings, "press-01/state")) >= 2
                )

            await async_wait_for(all_changes, 20, "every written value")

    temps = of(readings, "press-01/temperature")
    assert [r.value for r in temps] == [20.0, *written]  # initial value, then every change
    assert [r.source_ts for r in temps[1:]] == [t0 + timedelta(milliseconds=i) for i in range(10)]
    assert {r.unit for r in temps} == {"degC"}
    assert {r.unit for r in of(readings, "press-01/pressure")} == {"bar"}
    state = of(readings, "press-01/state")
    assert [r.value for r in state] == ["idle", "running"]
    assert state[0].unit is None
    uncertain = of(readings, "press-02/temperature")[-1]
    assert uncertain.value == 99.0
    assert uncertain.status_code == StatusCodes.UncertainLastUsableValue
    assert uncertain.quality == Quality.UNCERTAIN
    assert all(r.quality == Quality.GOOD for r in temps)
    assert all(r.gateway_ts >= r.source_ts for r in temps)
    (ghost,) = of(readings, "m/ghost")  # the bad node is visible downstream, with its status
    assert ghost.quality == Quality.BAD
    assert ghost.status_code == StatusCodes.BadNodeIdUnknown
    assert source.state.errors >= 1
    assert source.bad_nodes == 1
    assert not any(r.signal == "Manufacturer" for r in readings)


async def test_server_restart_resubscribes_and_loses_nothing_produced_after_reconnect() -> None:
    """Kill the server mid-stream and start another on the same port whose namespace has
    another index. Node ids given by namespace URI and by browse path are resolved again; every
    value the new server holds or produces once the agent is back arrives, in order."""
    port = free_port()
    endpoint = f"opc.tcp://127.0.0.1:{port}/plantmesh"
    explicit = [
        {"node_id": f"nsu={NAMESPACE};s={STEAM_ID}", "signal": "steam_pressure"},
        {"browse_path": "Site/utilities/boiler-01/level", "signal": "level"},
    ]
    nodes = [{**n, "area": "utilities", "line": "steam", "machine": "boiler-01"} for n in explicit]
    config = opc_source(endpoint, nodes=nodes)
    first_server, plc = await build_plc(port)
    async with running_source(config) as (source, readings):
        async with serving(first_server):

            async def sessions(n: int) -> bool:
                return source.sessions == n and source.state.connected

            async def seen(key: str, value: float) -> bool:
                return value in values_of(readings, key)

            await async_wait_for(lambda: sessions(1), 20, "the first session")
            await plc.vars["press-01/pressure"].write_value(101.0)
            await plc.vars["boiler/steam"].write_value(7.5)
            await async_wait_for(lambda: seen("press-01/pressure", 101.0), 20, "101 bar")
            await async_wait_for(lambda: seen("boiler-01/steam_pressure", 7.5), 20, "7.5 bar")
            assert source.subscribed == 6
        # The server is gone (its sessions' tasks killed). Its replacement registers two other
        # namespaces first, so ours moves from index 2 to 4; it starts with other values.
        second_server, plc = await build_plc(port, other_namespaces=2)
        assert plc.namespace_index == 4
        await plc.vars["press-01/pressure"].write_value(150.0)
        await plc.vars["boiler/level"].write_value(2.0)

        async def disconnected() -> bool:
            return not source.state.connected

        await async_wait_for(disconnected, 20, "the source to notice the server is gone")
        async with serving(second_server):
            await async_wait_for(lambda: sessions(2), 30, "a new session after the restart")
            burst = [151.0 + i for i in range(20)]
            for value in burst:
                await plc.vars["press-01/pressure"].write_value(value)
            await plc.vars["boiler/steam"].write_value(8.0)
            await async_wait_for(lambda: seen("press-01/pressure", burst[-1]), 20, "the burst")
            await async_wait_for(lambda: seen("boiler-01/steam_pressure", 8.0), 20, "8 bar")
            assert source.subscribed == 6
    # Initial value, the change before the restart, then the restarted server's value at
    # reconnect and every value it produced afterwards: nothing lost, nothing twice.
    assert values_of(readings, "press-01/pressure") == [100.0, 101.0, 150.0, *burst]
    assert values_of(readings, "boiler-01/steam_pressure") == [7.0, 7.5, 7.0, 8.0]
    assert values_of(readings, "boiler-01/level") == [1.0, 2.0]
    assert source.state.errors >= 1
    assert all(r.quality == Quality.GOOD for r in readings)


async def test_a_silent_connection_is_detected_by_missing_keepalives_and_replaced() -> None:
    """The link goes dead without closing (no FIN, no RST): only missing keep-alives tell.
    asyncua's own server-state watchdog is set far off so the source's keep-alive check is what
    must notice."""
    port = free_port()
    async with opcua_plc(port) as plc, freezing_proxy(port) as proxy:
        config = opc_source(
            f"opc.tcp://127.0.0.1:{proxy.port}/plantmesh",
            keepalive_timeout_s=1.5,
            watchdog_interval_s=600,
            request_timeout_s=1,
        )
        async with running_source(config) as (source, readings):

            async def sessions(n: int) -> bool:
                return source.sessions == n and source.state.connected

            await async_wait_for(lambda: sessions(1), 20, "the first session")
            proxy.freeze()
            await plc.vars["press-01/pressure"].write_value(101.0)  # stuck in the frozen link
            await async_wait_for(lambda: sessions(2), 30, "a new session over a new connection")
            await plc.vars["press-01/pressure"].write_value(102.0)

            async def seen_102() -> bool:
                return 102.0 in values_of(readings, "press-01/pressure")

            await async_wait_for(seen_102, 20, "a value written after the new session")
    # The new session's initial value carries 101, which the frozen link never delivered.
    assert values_of(readings, "press-01/pressure") == [100.0, 101.0, 102.0]
    assert source.state.errors >= 1
