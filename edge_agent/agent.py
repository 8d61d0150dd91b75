"""The agent runtime: one TaskGroup holding the publisher, every source and the health reporter.

Order matters at both ends: the publisher starts before the sources (nothing a source reads has
nowhere to go) and stops after them (what they read last is still published), then death.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from edge_agent.buffer import BatchBuffer, MemoryBatchBuffer
from edge_agent.config import AgentConfig
from edge_agent.publisher import Publisher
from edge_agent.sources import Source
from edge_agent.sources.registry import build_source
from plantmesh.contracts import GatewayHealth, SourceHealth
from plantmesh.lifecycle import stop_on_signals

log = logging.getLogger(__name__)


class Agent:
    """In-process use (tests, embedding):

    agent = Agent(config)
    task = asyncio.create_task(agent.run())
    await agent.started.wait()
    ...
    agent.stop()
    await task
    """

    def __init__(self, config: AgentConfig, buffer: BatchBuffer | None = None) -> None:
        self.config = config
        self.session_id = uuid.uuid4().hex
        if buffer is None:
            max_bytes = int(config.buffer.max_mib * 1024 * 1024)
            buffer = MemoryBatchBuffer(config.buffer.max_batches, max_bytes)
        self.buffer = buffer
        self.publisher = Publisher(config, self.session_id, self.buffer)
        self.sources: list[Source] = [
            build_source(source, config.plant, self.publisher.submit) for source in config.sources
        ]
        self.started = asyncio.Event()
        """Set once every task is running (not a sign that anything is connected)."""
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Ask `run()` to shut down cleanly; safe to call from a signal handler, more than once."""
        self._stop.set()

    def source_health(self) -> list[SourceHealth]:
        return [entry for source in self.sources for entry in source.health()]

    def health(self) -> GatewayHealth:
        return self.publisher.health(self.source_health())

    async def run(self, handle_signals: bool = False) -> None:
        """Run until `stop()`, or SIGTERM/SIGINT with `handle_signals` (for embedding; `agent run`
        goes through plantmesh.lifecycle.run_service, which handles them the same way)."""
        log.info(
            "agent %s (plant %s) starting: session %s, %d sources, mqtt %s",
            self.config.gateway_id,
            self.config.plant,
            self.session_id,
            len(self.sources),
            self.config.mqtt.url,
        )
        signals = (
            stop_on_signals(self.stop, "agent") if handle_signals else contextlib.nullcontext()
        )
        with signals:
            async with asyncio.TaskGroup() as tg:
                self.publisher.start(tg)
                workers = [task for source in self.sources for task in source.start(tg)]
                workers.append(tg.create_task(self._health_loop(), name="health"))
                self.started.set()
                await self._stop.wait()
                log.info("agent %s stopping", self.config.gateway_id)
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                await self.publisher.close()
        stats = self.publisher.stats
        log.info(
            "agent %s stopped: %d readings, %d batches acknowledged, %d dropped",
            self.config.gateway_id,
            stats.readings_in,
            stats.batches_acked,
            stats.dropped_batches,
        )

    async def _health_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.config.health_interval_s)
            if self._stop.is_set():
                return
            self.publisher.publish_health(self.health())
