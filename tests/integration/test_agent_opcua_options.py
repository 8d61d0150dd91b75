"""OPC UA read options against a real asyncua server: deadbands (absolute, percent of EURange),
polling per node, options per group (browse root) and per node."""

from __future__ import annotations

import pytest
from asyncua import ua
from asyncua.ua.status_codes import StatusCodes

from plantmesh.contracts import Quality
from tests.support.opcua import (
    build_plc,
    of,
    opc_source,
    running_source,
    serving,
    values_of,
)
from tests.support.ports import free_port
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

BOILER = {"area": "utilities", "line": "steam", "machine": "boiler-01"}


async def test_deadbands_and_polling_per_group_and_per_node() -> None:
    server, plc = await build_plc(free_port())
    await plc.vars["boiler/level"].add_property(0, "EURange", ua.Range(Low=0.0, High=200.0))
    config = opc_source(
        plc.endpoint,
        browse=[{"root": "Site/plant-a", "deadband": {"type": "absolute", "value": 0.5}}],
        nodes=[
            # 1 % of the 0..200 EURange: changes of more than 2.0 are reported
            {
                "browse_path": "Site/utilities/boiler-01/level",
                "signal": "level",
                "deadband": {"type": "percent", "value": 1},
                **BOILER,
            },
            # percent without an EURange cannot work: this node is Bad, the others stream
            {
                "browse_path": "Site/utilities/boiler-01/steam_pressure",
                "signal": "steam_pressure",
                "deadband": {"type": "percent", "value": 1},
                **BOILER,
            },
            {
                "browse_path": "Site/plant-a/pressing/line1/press-02/temperature",
                "signal": "polled_temperature",
                "mode": "poll",
                "poll_interval_s": 0.1,
                **BOILER,
            },
        ],
    )
    async with serving(server), running_source(config) as (source, readings):

        async def ready() -> bool:
            return source.subscribed == 5 and source.polled == 1 and len(readings) >= 7

        await async_wait_for(ready, 20, "subscriptions, the poll and the Bad node")
        for value in (100.2, 101.0, 101.3, 102.0):  # the server compares with the last value
            await plc.vars["press-01/pressure"].write_value(value)
        for value in (2.0, 5.0, 6.0, 9.0):
            await plc.vars["boiler/level"].write_value(value)
        await plc.vars["press-02/temperature"].write_value(31.0)

        async def changes_and_polls() -> bool:
            return (
                102.0 in values_of(readings, "press-01/pressure")
                and 9.0 in values_of(readings, "boiler-01/level")
                and values_of(readings, "boiler-01/polled_temperature").count(31.0) >= 3
            )

        await async_wait_for(changes_and_polls, 20, "the reported changes and three polls")

    assert values_of(readings, "press-01/pressure") == [100.0, 101.0, 102.0]
    assert values_of(readings, "boiler-01/level") == [1.0, 5.0, 9.0]
    (bad,) = of(readings, "boiler-01/steam_pressure")
    assert bad.quality == Quality.BAD
    assert bad.status_code == StatusCodes.BadDeadbandFilterInvalid
    polled = values_of(readings, "boiler-01/polled_temperature")
    first = polled.index(31.0)  # every poll publishes, changed or not
    assert first > 0
    assert set(polled[:first]) == {30.0}
    assert set(polled[first:]) == {31.0}
    # the same variable, subscribed through the browse root: 1.0 is past the 0.5 deadband
    assert values_of(readings, "press-02/temperature") == [30.0, 31.0]
    assert source.bad_nodes == 1


async def test_poll_mode_for_a_whole_source_reads_on_its_interval() -> None:
    server, plc = await build_plc(free_port())
    config = opc_source(plc.endpoint, mode="poll", poll_interval_s=0.1)
    async with serving(server), running_source(config) as (source, readings):

        async def polled_thrice() -> bool:
            return source.polled == 4 and len(of(readings, "press-01/pressure")) >= 3

        await async_wait_for(polled_thrice, 20, "three polls")
        assert source.subscribed == 0
        await plc.vars["press-01/pressure"].write_value(120.0)

        async def seen() -> bool:
            return 120.0 in values_of(readings, "press-01/pressure")

        await async_wait_for(seen, 20, "the new value in a later poll")
    assert {r.unit for r in of(readings, "press-01/pressure")} == {"bar"}
    assert all(r.quality == Quality.GOOD for r in readings)
