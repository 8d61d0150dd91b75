"""Browse roots on a server laid out otherwise than area/line/machine (an asyncua server built
here: PLC1/DataBlocks/<machine>/Tags/<variable>, and variables straight under a folder): the
`levels` mapping binds them, and a root that binds nothing says so in one log line."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from asyncua import ua
from asyncua.server.server import Server

from tests.support.opcua import of, opc_source, running_source, serving
from tests.support.ports import free_port
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def plc() -> AsyncIterator[str]:
    server = Server()
    await server.init()
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/plc"
    server.set_endpoint(endpoint)
    idx = await server.register_namespace("urn:plantmesh:test:layouts")
    blocks = await (await server.nodes.objects.add_folder(idx, "PLC1")).add_folder(
        idx, "DataBlocks"
    )
    for i, machine in enumerate(("Press_A", "Press_B")):
        tags = await (await blocks.add_object(idx, machine)).add_folder(idx, "Tags")
        temp = await tags.add_variable(idx, "temp", 40.0 + i)
        eu = ua.EUInformation()
        eu.DisplayName = ua.LocalizedText("degC")
        await temp.add_property(0, "EngineeringUnits", eu)
        await tags.add_variable(idx, "pressure", 100.0 + i)
    flat = await server.nodes.objects.add_folder(idx, "Flat")
    await flat.add_variable(idx, "speed", 7.5)
    async with serving(server):
        yield endpoint


async def test_levels_and_fixed_names_bind_any_layout(plc: str) -> None:
    browse = [
        {"root": "PLC1/DataBlocks", "levels": ["machine", "skip"], "area": "pressing",
         "line": "line1"},
        {"root": "Flat", "levels": [], "area": "utilities", "line": "main", "machine": "boiler-01"},
    ]  # fmt: skip
    async with running_source(opc_source(plc, browse=browse)) as (source, readings):

        async def bound() -> bool:
            return source.subscribed == 5 and len({r.series_key for r in readings}) == 5

        await async_wait_for(bound, 20, "the five variables of both roots")
    temp = of(readings, "Press_B/temp")[0]
    assert (temp.asset.area, temp.asset.line, temp.value, temp.unit) == (
        "pressing",
        "line1",
        41.0,
        "degC",
    )
    assert [r.value for r in of(readings, "Press_A/pressure")][:1] == [100.0]
    speed = of(readings, "boiler-01/speed")[0]
    assert (speed.asset.area, speed.asset.line, speed.value) == ("utilities", "main", 7.5)


async def test_a_root_that_binds_nothing_says_so(
    plc: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="edge_agent.sources.opcua_browse")
    browse = [
        {"root": "PLC1/DataBlocks"},  # area/line/machine: one folder level too few here
        {"root": "Flat", "levels": [], "area": "utilities", "line": "main", "machine": "boiler-01"},
    ]
    async with running_source(opc_source(plc, browse=browse)) as (source, readings):

        async def flat_streams() -> bool:
            return bool(of(readings, "boiler-01/speed"))

        await async_wait_for(flat_streams, 20, "the other root's variable")
        assert source.subscribed == 1
    warnings = [r.getMessage() for r in caplog.records if "bound no variables" in r.getMessage()]
    assert warnings == [
        "opcua browse root 'PLC1/DataBlocks' bound no variables: levels [area, line, machine] "
        "below it found 2 area, 2 line, 0 machine folders and no Variables in the last; set "
        "`levels` to the server's layout (`plantmesh agent discover opcua` shows it)"
    ]
