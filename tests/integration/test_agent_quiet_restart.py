"""A PLC restart in the agent's log: the simulator (its own process, OPC UA and Modbus) is
killed under a running agent and started again. Each source logs one warning when it loses the
PLC and one line when it is back; what asyncua and pymodbus say about it is there only at debug
(tracebacks included), and the session-timeout warning at every connect is gone."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge_agent.agent import Agent
from edge_agent.log_filters import EXPECTED, quiet_expected_library_logs
from plantmesh.modbus_profile import load_profile
from tests.support.agent import Recorder, agent_config, all_topics, running, subscribed
from tests.support.ports import free_port
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

PROFILES = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "profiles"
MACHINES = {"mill-01", "conveyor-01", "pump-01"}
LIBRARIES = ("asyncua", "pymodbus")
SOURCE_LINE = re.compile(r"^(?:opcua|modbus) source (\S+) \(")


class Simulator:
    """`python -m simulators run` serving one plant; `kill()` is the PLC losing power."""

    def __init__(self, network: Path, log: Path) -> None:
        self.network = network
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.log.write_text("")
        with self.log.open("ab") as stderr:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "simulators", "run", "--network", str(self.network),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
                env={**os.environ, "PLANTMESH_LOG_FORMAT": "text"},
            )  # fmt: skip

        async def serving() -> bool:
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(f"simulator exited: {self.log.read_text()}")
            return "simulation running" in self.log.read_text()

        await async_wait_for(serving, 30, "the simulator's servers")

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@asynccontextmanager
async def simulator(tmp_path: Path, opcua_port: int, modbus_port: int) -> AsyncIterator[Simulator]:
    where = {"area": "machining", "line": "line1"}
    modbus = {"protocol": "modbus", **where}
    machines = [
        {"id": "mill-01", "class": "cnc_mill", "protocol": "opcua", **where},
        {"id": "conveyor-01", "class": "conveyor", "unit_id": 1,
         "profile": str(PROFILES / "conveyor.yaml"), **modbus},
        {"id": "pump-01", "class": "centrifugal_pump", "unit_id": 2,
         "profile": str(PROFILES / "centrifugal_pump.yaml"), **modbus},
    ]  # fmt: skip
    plant = {
        "id": "plant-q",
        "opcua": {"port": opcua_port},
        "modbus": {"port": modbus_port},
        "machines": machines,
    }
    network = tmp_path / "network.yaml"
    network.write_text(yaml.safe_dump({"seed": 3, "tick_s": 0.2, "plants": [plant]}))
    sim = Simulator(network, tmp_path / "simulator.log")
    try:
        await sim.start()
        yield sim
    finally:
        await sim.kill()


def sources(opcua_port: int, modbus_port: int) -> list[dict[str, Any]]:
    def device(unit_id: int, machine: str, profile: str) -> dict[str, Any]:
        return {
            "unit_id": unit_id,
            "profile": load_profile(PROFILES / profile),
            "area": "machining",
            "line": "line1",
            "machine": machine,
            "poll_interval_s": 0.2,
        }

    return [
        {
            "type": "opcua",
            "name": "plc-opc",
            "endpoint": f"opc.tcp://127.0.0.1:{opcua_port}/plantmesh",
            "publishing_interval_ms": 100,
            "browse": [{"root": "plant-q"}],
            "reconnect_max_s": 1,
        },
        {
            "type": "modbus",
            "name": "plc-modbus",
            "host": "127.0.0.1",
            "port": modbus_port,
            "timeout_s": 0.5,
            "reconnect_max_s": 1,
            "devices": [
                device(1, "conveyor-01", "conveyor.yaml"),
                device(2, "pump-01", "centrifugal_pump.yaml"),
            ],
        },
    ]


@pytest.fixture
def agent_logging() -> Iterator[None]:
    """What `plantmesh agent run` installs, with the libraries at debug so that their demoted
    records reach caplog (as DEBUG) instead of being dropped; restored afterwards."""
    names = [*LIBRARIES, *{rule.logger for rule in EXPECTED}]
    saved = {n: (logging.getLogger(n).level, list(logging.getLogger(n).filters)) for n in names}
    quiet_expected_library_logs()
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield
    finally:
        for name, (level, filters) in saved.items():
            logging.getLogger(name).setLevel(level)
            logging.getLogger(name).filters[:] = filters


async def flowing(agent: Agent, recorder: Recorder, since: datetime) -> None:
    """Every device connected and every machine's readings published after `since`."""

    async def all_flowing() -> bool:
        machines = {
            r.asset.machine
            for batch in recorder.batches()
            for r in batch.readings
            if r.gateway_ts > since
        }
        return machines >= MACHINES and all(h.connected for h in agent.source_health())

    await async_wait_for(all_flowing, 30, f"readings of {sorted(MACHINES)} from every source")


@pytest.mark.usefixtures("agent_logging")
async def test_a_plc_restart_is_one_lost_and_one_recovered_line_per_source(
    mqtt_url: str, namespace: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    opcua_port, modbus_port = free_port(), free_port()
    config = agent_config(mqtt_url, namespace, sources(opcua_port, modbus_port))
    async with simulator(tmp_path, opcua_port, modbus_port) as sim:
        with subscribed(mqtt_url, *all_topics(namespace)) as recorder:
            async with running(config) as agent:
                await flowing(agent, recorder, datetime.min.replace(tzinfo=UTC))
                await sim.kill()

                async def all_lost() -> bool:
                    return not any(h.connected for h in agent.source_health())

                await async_wait_for(all_lost, 30, "every source to notice the PLC is gone")
                await sim.start()
                await flowing(agent, recorder, datetime.now(UTC))

    ours = [r for r in caplog.records if r.name.startswith(("edge_agent", *LIBRARIES))]
    loud = [r for r in ours if r.levelno >= logging.WARNING]
    lost = [r for r in loud if " lost: " in r.getMessage()]
    assert sorted(source_of(r) for r in lost) == ["plc-modbus", "plc-opc"], texts(loud)
    assert loud == lost, texts(loud)  # nothing else at warning or above, from anyone
    assert not any(r.exc_info or "Traceback" in r.getMessage() for r in loud)
    recovered = [r for r in ours if re.search(r" recovered after \d+\.\d s", r.getMessage())]
    assert sorted(source_of(r) for r in recovered) == ["plc-modbus", "plc-opc"], texts(recovered)
    assert {r.levelno for r in recovered} == {logging.INFO}
    # The libraries did say their piece, at debug: the filter demoted, nothing went missing.
    timeouts = [r for r in ours if str(r.msg).startswith("Requested session timeout")]
    assert len(timeouts) >= 2  # one per connect: the simulator grants 10 minutes, not an hour
    crashes = [r for r in ours if str(r.msg).startswith("Publish iteration crashed")]
    assert {r.levelno for r in timeouts + crashes} == {logging.DEBUG}


def source_of(record: logging.LogRecord) -> str:
    match = SOURCE_LINE.match(record.getMessage())
    assert match is not None, record.getMessage()
    return match.group(1)


def texts(records: list[logging.LogRecord]) -> list[str]:
    return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in records]
