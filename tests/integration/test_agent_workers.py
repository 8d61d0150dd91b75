"""`workers: N`: the agent's sources read in worker processes, published by the agent in one
session, against a real OPC UA server, a real Modbus server and Mosquitto; a worker killed with
kill -9 is started again."""

from __future__ import annotations

import os
import signal

import pytest

from plantmesh.contracts import ReadingBatch
from tests.support.agent import agent_config, all_topics, running, subscribed
from tests.support.modbus import device, modbus_plc, modbus_source
from tests.support.opcua import opc_source, opcua_plc
from tests.support.ports import free_port
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration


def machines_of(batches: list[ReadingBatch]) -> set[str]:
    return {r.asset.machine for b in batches for r in b.readings}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_workers_read_every_source_into_one_session_and_a_killed_one_comes_back(
    mqtt_url: str, namespace: str
) -> None:
    async with modbus_plc() as modbus, opcua_plc(free_port()) as opc:
        sources = [
            opc_source(opc.endpoint),
            modbus_source(modbus.port, [device(1, "pump-01")]),
        ]
        config = agent_config(mqtt_url, namespace, sources)
        config.workers = 2
        with subscribed(mqtt_url, *all_topics(namespace)) as recorder:
            async with running(config) as agent:
                pool = agent.pool
                assert pool is not None
                assert [[s.name for s in w.sources] for w in pool.workers] == [
                    ["plc-opc"],
                    ["plc-modbus"],
                ]
                assert agent.sources == []  # nothing read in the agent's own process

                async def both_sources() -> bool:
                    return {"press-01", "pump-01"} <= machines_of(recorder.batches())

                await async_wait_for(both_sources, 30, "readings of both workers' sources")
                pids = [w.process.pid for w in pool.workers if w.process is not None]
                assert len(set(pids)) == 2
                assert os.getpid() not in pids

                async def healthy() -> bool:
                    health = {h.name: h.connected for h in agent.source_health()}
                    return health == {"plc-opc": True, "plc-modbus.pump-01": True}

                await async_wait_for(healthy, 20, "both workers' health")

                os.kill(pids[1], signal.SIGKILL)  # the Modbus worker
                seen = len(recorder.batches())

                async def back() -> bool:
                    later = recorder.batches()[seen:]
                    return pool.restarts == 1 and "pump-01" in machines_of(later)

                await async_wait_for(back, 30, "the killed worker started again and reading")
                assert pool.workers[0].starts == 1  # the other worker kept running
                restarted = pool.workers[1].process
                assert restarted is not None
                assert restarted.pid != pids[1]
                pids.append(restarted.pid)
            for pid in pids:
                assert not alive(pid), f"worker {pid} outlived the agent"
            batches = recorder.batches()
    assert {b.session_id for b in batches} == {agent.session_id}
    seqs = sorted(b.seq for b in batches)
    assert seqs == list(range(len(seqs)))  # one numbering, no gap, no duplicate
