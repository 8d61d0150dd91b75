"""The OPC UA servers, read with an independent asyncua Client."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asyncua import Client, ua

from simulators import NAMESPACE_URI, NetworkConfig, Simulation
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

START = datetime(2026, 5, 4, 8, 0, 0, tzinfo=UTC)
NETWORK = {
    "seed": 11,
    "tick_s": 1.0,
    "plants": [
        {
            "id": "plant-x",
            "opcua": {"port": 0},
            "machines": [
                {
                    "id": "press-01",
                    "area": "stamping",
                    "line": "line1",
                    "class": "hydraulic_press",
                    "protocol": "opcua",
                },
                {
                    "id": "pump-01",
                    "area": "utilities",
                    "line": "line2",
                    "class": "centrifugal_pump",
                    "protocol": "opcua",
                },
            ],
        },
        {
            "id": "plant-y",
            "opcua": {"port": 0},
            "machines": [
                {
                    "id": "mill-01",
                    "area": "machining",
                    "line": "line1",
                    "class": "cnc_mill",
                    "protocol": "opcua",
                }
            ],
        },
    ],
    "events": [
        {
            "plant": "plant-x",
            "machine": "press-01",
            "signal": "bearing_temp",
            "kind": "excursion",
            "start_s": 2,
            "duration_s": 2,
            "value": 96.0,
        }
    ],
}


class Changes:
    """Collects data-change notifications per node id string."""

    def __init__(self) -> None:
        self.by_node: dict[str, list[ua.DataValue]] = defaultdict(list)

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        self.by_node[node.nodeid.Identifier].append(data.monitored_item.Value)


@pytest.fixture
async def sim() -> AsyncIterator[Simulation]:
    simulation = Simulation(NetworkConfig.model_validate(NETWORK), start=START)
    async with simulation.serving():
        yield simulation


@pytest.fixture
async def client(sim: Simulation) -> AsyncIterator[Client]:
    url = sim.endpoints()["plant-x"].opcua_url
    assert url is not None
    async with Client(url, timeout=5) as connected:
        yield connected


def latest(sim: Simulation) -> dict[str, Any]:
    """The last served value of every signal, by node path."""
    values = {}
    for r in sim.records:
        values[r.series_key] = r
    return values


async def test_endpoints_are_bound_ports_with_the_plantmesh_path(sim: Simulation) -> None:
    endpoints = sim.endpoints()
    urls = {endpoints[p].opcua_url for p in ("plant-x", "plant-y")}
    assert len(urls) == 2
    for url in urls:
        assert url is not None
        assert url.startswith("opc.tcp://127.0.0.1:")
        assert url.endswith("/plantmesh")
        assert ":0/" not in url
    assert endpoints["plant-x"].modbus_host is None


async def test_values_units_ranges_and_timestamps_as_documented(
    sim: Simulation, client: Client
) -> None:
    await sim.step()
    idx = await client.get_namespace_index(NAMESPACE_URI)
    served = {k: r for k, r in latest(sim).items() if r.plant == "plant-x"}
    assert len(served) == 10 + 10  # every press and pump signal
    for path, record in served.items():
        node = client.get_node(ua.NodeId(path, idx))
        value = await node.read_data_value()
        assert value.StatusCode is not None
        assert value.StatusCode.is_good()
        assert value.Value is not None
        assert value.Value.VariantType == ua.VariantType.Double
        assert value.Value.Value == record.value, path
        assert value.SourceTimestamp == record.source_ts == START + timedelta(seconds=record.tick)
        units = await (await node.get_child("0:EngineeringUnits")).read_value()
        assert isinstance(units, ua.EUInformation)
        assert units.DisplayName.Text == record.unit
        assert units.NamespaceUri == "http://www.opcfoundation.org/UA/units/un/cefact"
        limits = await (await node.get_child("0:EURange")).read_value()
        assert isinstance(limits, ua.Range)
        assert limits.Low < limits.High
    celsius = await (
        await client.get_node(
            ua.NodeId("plant-x/stamping/line1/press-01/bearing_temp", idx)
        ).get_child("0:EngineeringUnits")
    ).read_value()
    assert celsius.UnitId == 4408652  # UN/CEFACT "CEL"


async def test_browse_path_objects_plant_area_line_machine_signal(client: Client) -> None:
    idx = await client.get_namespace_index(NAMESPACE_URI)
    node = await client.nodes.objects.get_child(
        [f"{idx}:plant-x", f"{idx}:utilities", f"{idx}:line2", f"{idx}:pump-01", f"{idx}:flow"]
    )
    assert node.nodeid == ua.NodeId("plant-x/utilities/line2/pump-01/flow", idx)
    machine = await client.nodes.objects.get_child(
        [f"{idx}:plant-x", f"{idx}:stamping", f"{idx}:line1", f"{idx}:press-01"]
    )
    assert await machine.read_node_class() == ua.NodeClass.Object
    names = {(await c.read_browse_name()).Name for c in await machine.get_children()}
    assert names == {
        "state",
        "running",
        "speed",
        "motor_current",
        "bearing_temp",
        "vibration_rms",
        "good_parts",
        "scrap_parts",
        "alarm_word",
        "pressure",
    }
    # Each plant serves only its own machines.
    plants = {(await c.read_browse_name()).Name for c in await client.nodes.objects.get_children()}
    assert "plant-x" in plants
    assert "plant-y" not in plants


async def test_subscription_sees_every_tick_and_only_changes(
    sim: Simulation, client: Client
) -> None:
    idx = await client.get_namespace_index(NAMESPACE_URI)
    press = [r for r in latest(sim).values() if r.machine == "press-01"]
    nodes = [client.get_node(ua.NodeId(r.series_key, idx)) for r in press]
    changes = Changes()
    subscription = await client.create_subscription(20, changes)
    try:
        await subscription.subscribe_data_change(nodes)

        async def subscribed() -> bool:
            return len(changes.by_node) == len(nodes)

        await async_wait_for(subscribed, 5, "initial notifications")
        for tick in range(1, 6):
            records = [r for r in await sim.step() if r.machine == "press-01"]
            assert any(r.signal == "bearing_temp" for r in records)

            async def delivered(records: list[Any] = records) -> bool:
                return all(
                    any(
                        v.SourceTimestamp == r.source_ts and v.Value.Value == r.value
                        for v in changes.by_node[r.series_key]
                    )
                    for r in records
                )

            await async_wait_for(delivered, 5, f"notifications of tick {tick}")
    finally:
        await subscription.delete()
    # One notification per served change (plus the initial value), none for unchanged values.
    for record in press:
        path = record.series_key
        written = [r for r in sim.records if r.series_key == path and r.tick >= 1]
        assert len(changes.by_node[path]) == 1 + len(written), path
    stamps = [
        v.SourceTimestamp for v in changes.by_node["plant-x/stamping/line1/press-01/bearing_temp"]
    ]
    assert stamps == [START + timedelta(seconds=t) for t in range(6)]
    hot = [v.Value.Value for v in changes.by_node["plant-x/stamping/line1/press-01/bearing_temp"]]
    assert [t for t, v in enumerate(hot) if v > 90] == [2, 3]  # the excursion, 2 s from 2 s
