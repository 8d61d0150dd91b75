"""Hot reload against a real broker and a real Modbus PLC: the source whose section did not
change keeps streaming through the reload, on the same connection, and so does the publisher."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from edge_agent.config import load_agent_config
from tests.support.agent import all_topics, clear_retained, subscribed
from tests.support.modbus import device, modbus_plc, modbus_source
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration


def write(path: Path, mqtt_url: str, namespace: str, sources: list[dict[str, Any]]) -> None:
    for source in sources:
        for dev in source["devices"]:
            dev["profile"] = dev["profile"].model_dump(mode="json")
    path.write_text(
        json.dumps(
            {
                "gateway_id": "gw-reload",
                "plant": "plant-a",
                "namespace": namespace,
                "mqtt": {"url": mqtt_url, "client_id": f"agent-{namespace}"},
                "publish_interval_s": 0.1,
                "buffer": {"kind": "memory"},
                "watch_config_s": 0,
                "sources": sources,
            }
        )
    )


def sources(port: int, second_poll_s: float) -> list[dict[str, Any]]:
    first = modbus_source(port, [device(1, "pump-01", poll_interval_s=0.05)])
    second = {
        **modbus_source(port, [device(1, "pump-02", poll_interval_s=second_poll_s)]),
        "name": "second",
    }
    return [first, second]


async def test_reload_restarts_only_the_changed_source(
    mqtt_url: str, namespace: str, tmp_path: Path
) -> None:
    path = tmp_path / "agent.yaml"
    async with modbus_plc() as plc:
        write(path, mqtt_url, namespace, sources(plc.port, 0.05))
        agent = Agent(load_agent_config(path), config_path=path)
        with subscribed(mqtt_url, *all_topics(namespace)) as recorder:
            task = asyncio.create_task(agent.run(), name="reload-agent")
            try:
                await asyncio.wait_for(agent.started.wait(), 10)
                kept, changed = agent._sources["plc-modbus"], agent._sources["second"]

                def machines() -> set[str]:
                    return {r.asset.machine for b in recorder.batches() for r in b.readings}

                async def both_streaming() -> bool:
                    return machines() == {"pump-01", "pump-02"}

                await async_wait_for(both_streaming, 15, "readings from both sources")
                [before] = kept.source.health()
                readings_before = len(recorder.batches())

                write(path, mqtt_url, namespace, sources(plc.port, 0.2))
                agent.reload()

                async def reloaded() -> bool:
                    return agent.reloads == 1

                await async_wait_for(reloaded, 10, "the reload")
                assert agent._sources["plc-modbus"] is kept
                assert not any(t.done() for t in kept.tasks)  # never stopped
                assert agent._sources["second"] is not changed
                assert agent.publisher.stats.connects == 1  # the MQTT connection stayed up

                async def still_streaming() -> bool:
                    return len(recorder.batches()) >= readings_before + 10 and all(
                        h.connected for s in agent.sources for h in s.health()
                    )

                await async_wait_for(still_streaming, 15, "both sources after the reload")
                [after] = kept.source.health()
                assert after.connected
                assert after.errors == before.errors
            finally:
                agent.stop()
                await asyncio.wait_for(task, 30)
                await asyncio.to_thread(clear_retained, mqtt_url, agent.publisher.status_topic)
