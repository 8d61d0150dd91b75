"""A worker process of the agent (`workers: N`): runs some of the agent's sources and hands
their readings, as JSON text, to the agent over its stdout (edge_agent.worker_frames).

    python -m edge_agent.worker_process      (started by edge_agent.worker_pool, never by hand)

The agent writes one setup frame to the worker's stdin: the agent's config (profiles and paths
already resolved) with only the sources this worker reads (a Modbus source cut down to this
worker's devices), and the log level and format.
The worker then sends what its sources read every FLUSH_S, and its sources' health every
HEALTH_S. It ends on SIGTERM (sources stop, what they read last is sent) or when its stdin
closes, so a worker never outlives an agent that was killed. Ctrl-C in a terminal reaches the
whole process group: the worker leaves it to the agent, which stops it in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import Any

from edge_agent.config import AgentConfig
from edge_agent.log_filters import quiet_expected_library_logs
from edge_agent.reading_json import MachineJson
from edge_agent.sources.registry import build_source
from edge_agent.tasks import cancel_and_wait
from edge_agent.worker_frames import (
    HEALTH,
    READINGS,
    SETUP,
    MachineReadings,
    frame,
    read_frame,
)
from plantmesh.logs import setup_logging

FLUSH_S = 0.1
"""How often readings go to the agent: well inside its publish interval, few frames a second."""
HEALTH_S = 1.0


class Outbox:
    """The sink of this worker's sources: readings per machine until the next flush."""

    def __init__(self) -> None:
        self._machines: dict[str, tuple[MachineJson, list[str]]] = {}

    def add(self, machine: MachineJson, readings: list[str]) -> None:
        entry = self._machines.get(machine.key)
        if entry is None:
            self._machines[machine.key] = (machine, list(readings))
        else:
            entry[1].extend(readings)

    def take(self) -> list[MachineReadings]:
        taken, self._machines = self._machines, {}
        return [(key, machine.asset_json, texts) for key, (machine, texts) in taken.items()]


async def _pipes() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    # The frames get the pipe to themselves; whatever a library prints goes to the log.
    frames = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(frames, "wb", buffering=0)
    )
    return reader, asyncio.StreamWriter(transport, protocol, None, loop)


async def serve() -> None:
    reader, writer = await _pipes()
    setup = await read_frame(reader)
    if setup is None or setup[0] != SETUP:
        raise SystemExit("edge_agent.worker_process: no setup on stdin (started by the agent only)")
    config, level, log_format = setup[1]
    assert isinstance(config, AgentConfig)
    setup_logging(level, log_format)
    quiet_expected_library_logs()  # as `agent run` does: a PLC restart is logged once
    outbox = Outbox()
    sources = [build_source(s, config.plant, outbox.add) for s in config.sources]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, lambda: None)

    async def send(kind: str, body: list[Any]) -> None:
        writer.write(frame(kind, body))
        await writer.drain()

    async def flush_loop() -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            if taken := outbox.take():
                await send(READINGS, taken)

    async def health_loop() -> None:
        while True:
            health = [h.model_dump(mode="json") for s in sources for h in s.health()]
            await send(HEALTH, health)
            await asyncio.sleep(HEALTH_S)

    async def parent_gone() -> None:
        await reader.read()  # returns at EOF: the agent closed our stdin or died
        stop.set()

    async with asyncio.TaskGroup() as tg:
        tasks = [task for source in sources for task in source.start(tg)]
        helpers = [
            tg.create_task(flush_loop()),
            tg.create_task(health_loop()),
            tg.create_task(parent_gone()),
        ]
        await stop.wait()
        await cancel_and_wait(tasks)
        await cancel_and_wait(helpers)
        with contextlib.suppress(ConnectionError):
            if taken := outbox.take():
                await send(READINGS, taken)
            writer.close()


def main() -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
