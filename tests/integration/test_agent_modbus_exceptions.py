"""A failed sensor behind a Modbus device, as the simulator scripts it (`bad_quality` with
`modbus: exception`: reads touching its registers answer exception 4): the source publishes the
signals of the refused request Bad with their last good value, every other signal good, and the
device stays connected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusTcpClient

from edge_agent.config import ModbusSourceConfig
from edge_agent.sources import decoding
from edge_agent.sources.modbus import DevicePoller, ModbusSource
from edge_agent.sources.modbus_plan import plan_reads
from plantmesh.contracts import STATUS_BAD_SENSOR_FAILURE, STATUS_GOOD, Quality, Reading
from plantmesh.modbus_profile import load_profile
from simulators import NetworkConfig, Simulation
from simulators.scenario import ScenarioConfig

pytestmark = pytest.mark.integration

CONVEYOR = load_profile(Path(__file__).resolve().parents[2] / "deploy/demo/profiles/conveyor.yaml")
START = datetime(2026, 5, 4, 8, 0, 0, tzinfo=UTC)


@pytest.fixture
async def failed_bearing_sensor() -> AsyncIterator[Simulation]:
    """conveyor-01's bearing temperature sensor fails at tick 2 and is back by tick 5."""
    network = NetworkConfig.model_validate(
        {
            "seed": 3,
            "plants": [
                {
                    "id": "plant-m",
                    "modbus": {"port": 0},
                    "machines": [
                        {"id": "conveyor-01", "area": "stamping", "line": "line1",
                         "class": "conveyor", "protocol": "modbus", "unit_id": 1,
                         "profile": CONVEYOR},
                    ],
                }
            ],
        }
    )  # fmt: skip
    scenario = ScenarioConfig.model_validate(
        {"events": [{"kind": "bad_quality", "plant": "plant-m", "machine": "conveyor-01",
                     "signal": "bearing_temp", "modbus": "exception", "start_s": 2,
                     "duration_s": 2}]}
    )  # fmt: skip
    sim = Simulation(network, start=START, scenario=scenario)
    async with sim.serving():
        yield sim


def conveyor_poller(port: int, readings: list[Reading]) -> DevicePoller:
    device = {
        "unit_id": 1,
        "profile": CONVEYOR,
        "area": "stamping",
        "line": "line1",
        "machine": "conveyor-01",
    }
    config = {"type": "modbus", "name": "plc", "host": "127.0.0.1", "port": port, "timeout_s": 2}
    source = ModbusSource(
        ModbusSourceConfig.model_validate(config | {"devices": [device]}),
        "plant-m",
        decoding(readings.append),
    )
    return source.devices[0]


def by_status(readings: list[Reading]) -> dict[str, tuple[int, Quality]]:
    return {r.signal: (r.status_code, r.quality) for r in readings}


# Coalesced, the bearing sensor's registers share one holding read with the signals next to them;
# read register by register (as a gateway that caps requests would), only it is refused.
@pytest.mark.parametrize("one_register_per_read", [False, True])
async def test_a_failed_sensor_arrives_bad_and_the_rest_good(
    failed_bearing_sensor: Simulation, one_register_per_read: bool
) -> None:
    sim = failed_bearing_sensor
    port = sim.endpoints()["plant-m"].modbus_port
    assert port
    readings: list[Reading] = []
    poller = conveyor_poller(port, readings)
    if one_register_per_read:
        poller.plan = plan_reads(CONVEYOR, max_registers=1)
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    try:
        await sim.step()  # tick 1: all good
        assert await poller._poll_once(client)
        before = {r.signal: r.value for r in readings}
        assert set(by_status(readings).values()) == {(STATUS_GOOD, Quality.GOOD)}
        readings.clear()
        await sim.step()  # tick 2: the bearing sensor fails
        assert await poller._poll_once(client)
        statuses = by_status(readings)
        assert set(statuses) == {s.signal for s in CONVEYOR.registers}  # nothing lost
        assert statuses["bearing_temp"] == (STATUS_BAD_SENSOR_FAILURE, Quality.BAD)
        bad = {s for s, (code, _) in statuses.items() if code == STATUS_BAD_SENSOR_FAILURE}
        if one_register_per_read:
            assert bad == {"bearing_temp"}
        else:  # the holding read failed; the coil read answered
            assert bad == {s.signal for s in CONVEYOR.registers if s.table.value == "holding"}
        assert statuses["running"] == (STATUS_GOOD, Quality.GOOD)
        held = {r.signal: r.value for r in readings if r.signal in bad}
        assert held == dict.fromkeys(bad)  # Bad means no value: no stale number either
        assert all(before[s] is not None for s in bad)
        assert poller.state.connected
        assert poller.state.errors == 1
        for _ in range(3):  # ticks 3, 4, 5: the sensor is back
            await sim.step()
            assert await poller._poll_once(client)
        readings.clear()
        await sim.step()
        assert await poller._poll_once(client)
        assert set(by_status(readings).values()) == {(STATUS_GOOD, Quality.GOOD)}
        assert poller.state.connected
    finally:
        client.close()
