"""The Modbus source inside a running agent, against a real Modbus TCP server: report by
exception, and a dead device that must not delay another."""

from __future__ import annotations

import pytest

from edge_agent.sources.modbus import ModbusSource
from plantmesh.contracts import ReadingBatch
from plantmesh.modbus_profile import encode_value
from tests.support.agent import agent_config, all_topics, running, subscribed, until_death
from tests.support.modbus import COILS, HOLDING, LEVEL, device, modbus_plc, modbus_source
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration


def values(batches: list[ReadingBatch], machine: str, signal: str) -> list[object]:
    return [
        r.value
        for b in batches
        for r in b.readings
        if r.asset.machine == machine and r.signal == signal
    ]


async def test_on_change_delivers_each_distinct_value_once(mqtt_url: str, namespace: str) -> None:
    async with modbus_plc() as plc:
        config = agent_config(
            mqtt_url,
            namespace,
            [modbus_source(plc.port, [device(1, "pump-01", on_change=True)])],
        )
        with subscribed(mqtt_url, *all_topics(namespace)) as recorder:
            async with running(config) as agent:
                source = agent.sources[0]
                assert isinstance(source, ModbusSource)
                poller = source.devices[0]

                def speeds() -> list[object]:
                    return values(recorder.batches(), "pump-01", "speed")

                async def polls_after(count: int) -> bool:
                    return poller.polls >= count

                async def speed_seen(n: int) -> bool:
                    return len(speeds()) >= n

                await async_wait_for(lambda: speed_seen(1), 10, "the first poll's values")
                expected_speeds = [0.0]
                for speed in (1200, 1200, 1500, 0, 0, 1500):
                    await plc.set(1, HOLDING, 0, [speed])
                    if float(speed) != expected_speeds[-1]:
                        expected_speeds.append(float(speed))
                        n = len(expected_speeds)
                        await async_wait_for(lambda n=n: speed_seen(n), 10, f"speed {speed}")
                    else:  # unchanged: a few more polls must publish nothing
                        after = poller.polls + 3
                        await async_wait_for(lambda a=after: polls_after(a), 10, "3 more polls")
                await plc.set(1, HOLDING, 2, encode_value(LEVEL, 2.5))
                await plc.set(1, COILS, 0, [True])

                async def level_and_running() -> bool:
                    batches = recorder.batches()
                    return (
                        len(values(batches, "pump-01", "level")) == 2
                        and len(values(batches, "pump-01", "running")) == 2
                    )

                await async_wait_for(level_and_running, 10, "the level and running changes")
                settle = poller.polls + 5
                await async_wait_for(lambda: polls_after(settle), 10, "5 more polls")
            await until_death(recorder)  # everything published before death has arrived

        batches = recorder.batches()
        assert values(batches, "pump-01", "speed") == expected_speeds
        assert values(batches, "pump-01", "level") == [0.0, 2.5]
        assert values(batches, "pump-01", "running") == [False, True]
        units = {r.signal: r.unit for b in batches for r in b.readings}
        assert units == {"speed": "rpm", "level": "m", "running": None}
        assert [b.seq for b in batches] == list(range(len(batches)))
        assert poller.state.errors == 0


async def test_a_dead_device_does_not_delay_another(mqtt_url: str, namespace: str) -> None:
    async with modbus_plc(dead_unit=2) as plc:
        config = agent_config(
            mqtt_url,
            namespace,
            [modbus_source(plc.port, [device(1, "pump-01"), device(2, "pump-02")])],
        )
        with subscribed(mqtt_url, *all_topics(namespace)) as recorder:
            async with running(config) as agent:
                source = agent.sources[0]
                assert isinstance(source, ModbusSource)
                alive, dead = source.devices

                async def dead_failed_twice() -> bool:
                    return dead.state.errors >= 2

                await async_wait_for(dead_failed_twice, 10, "two timed-out polls of unit 2")
                # Two 0.5 s timeouts took over a second; unit 1, polled every 50 ms over its own
                # connection, kept its pace (sharing one connection it would manage about 2).
                assert alive.polls >= 10
                await plc.set(1, HOLDING, 0, [777])

                async def fresh_value() -> bool:
                    return 777.0 in values(recorder.batches(), "pump-01", "speed")

                await async_wait_for(fresh_value, 5, "unit 1's new value during unit 2's outage")
                health = {h.name: h for h in agent.source_health()}
                assert health["plc-modbus.pump-01"].connected
                assert health["plc-modbus.pump-01"].errors == 0
                assert not health["plc-modbus.pump-02"].connected
                assert health["plc-modbus.pump-02"].errors >= 2
        assert values(recorder.batches(), "pump-02", "speed") == []
