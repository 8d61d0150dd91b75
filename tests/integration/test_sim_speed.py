"""An accelerated run served for real: at speed 5 the OPC UA server's source timestamps and the
ground truth are wall-clock (what a Modbus client stamps its polls with), while the scenario
runs five times faster."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from asyncua import Client, ua

from simulators import NAMESPACE_URI, NetworkConfig, Simulation
from simulators.scenario import ScenarioConfig
from tests.support.waiting import SCALE, async_wait_for

pytestmark = pytest.mark.integration

SPEED = 5.0
NETWORK = {
    "seed": 8,
    "tick_s": 1.0,
    "plants": [
        {
            "id": "plant-s",
            "opcua": {"port": 0},
            "machines": [
                {"id": "press-01", "area": "stamping", "line": "line1",
                 "class": "hydraulic_press", "protocol": "opcua"},
            ],
        }
    ],
}  # fmt: skip
# Scenario second 10 is 2 s of wall time after tick 0; 20 s of scenario last 4 s.
SCENARIO = {
    "events": [
        {"kind": "step", "plant": "plant-s", "machine": "press-01", "signal": "pressure",
         "start_s": 10, "duration_s": 20, "delta": 40.0},
    ]
}  # fmt: skip
PRESSURE = "plant-s/stamping/line1/press-01/pressure"


async def test_source_timestamps_and_truth_are_wall_clock_at_speed_5() -> None:
    sim = Simulation(
        NetworkConfig.model_validate(NETWORK),
        speed=SPEED,
        scenario=ScenarioConfig.model_validate(SCENARIO),
    )
    async with sim.serving():
        url = sim.endpoints()["plant-s"].opcua_url
        assert url is not None
        ticker = asyncio.create_task(sim.run())
        try:
            async with Client(url, timeout=5) as client:
                node = client.get_node(
                    ua.NodeId(PRESSURE, await client.get_namespace_index(NAMESPACE_URI))
                )

                async def began() -> bool:
                    return bool(sim.truth)

                await async_wait_for(began, 10, "the step to begin")
                seen = datetime.now(UTC)
                (truth,) = sim.truth
                assert sim.engine.start is not None
                # truth: stamped with the wall-clock instant the event began
                tolerance = timedelta(seconds=1.0 * SCALE)
                assert -timedelta(milliseconds=50) <= seen - truth.start < tolerance
                assert truth.start - sim.engine.start >= timedelta(seconds=10 / SPEED)
                assert truth.end is not None
                assert truth.end - truth.start == timedelta(seconds=20 / SPEED)
                assert truth.speed == SPEED

                async def three_more_ticks() -> bool:
                    return sim.tick >= 13

                await async_wait_for(three_more_ticks, 10, "three ticks after the step")
                value = await node.read_data_value()
                read_at = datetime.now(UTC)
                assert value.SourceTimestamp is not None
                source = value.SourceTimestamp.replace(tzinfo=UTC)
                # the server's source timestamp is the wall clock too, not scenario time
                assert abs(read_at - source) < tolerance
                assert source > truth.start
                # ... and one the engine stamped its records with (the truth's time base)
                assert source in {r.source_ts for r in sim.records if r.series_key == PRESSURE}
        finally:
            ticker.cancel()
            with pytest.raises(asyncio.CancelledError):
                await ticker
