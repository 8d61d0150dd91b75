"""The agent runtime: one TaskGroup holding the publisher, every source, the health reporter and
(when configured) the config watcher and the systemd watchdog.

Order matters at both ends: the publisher starts before the sources (nothing a source reads has
nowhere to go) and stops after them (what they read last is still published), then death.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.buffer import BatchBuffer, MemoryBatchBuffer
from edge_agent.config import AgentConfig, SourceConfig, load_agent_config
from edge_agent.disk_buffer import DiskBatchBuffer, buffer_path
from edge_agent.publisher import Publisher
from edge_agent.reading_json import MachineJson
from edge_agent.reload import FileWatch, diff
from edge_agent.sd_notify import Notifier
from edge_agent.sources import Source
from edge_agent.sources.registry import build_source
from edge_agent.tasks import cancel_and_wait
from edge_agent.worker_pool import WorkerPool
from plantmesh.config import ConfigError
from plantmesh.contracts import GatewayHealth, SourceHealth
from plantmesh.lifecycle import stop_on_signals

if TYPE_CHECKING:
    from plantmesh.metrics import MetricsServer

log = logging.getLogger(__name__)


def open_buffer(config: AgentConfig) -> BatchBuffer:
    settings = config.buffer
    max_bytes = int(settings.max_mib * 1024 * 1024)
    max_age_s = None if settings.max_age_h is None else settings.max_age_h * 3600
    if settings.kind == "memory":
        return MemoryBatchBuffer(settings.max_batches, max_bytes, max_age_s)
    return DiskBatchBuffer(buffer_path(config), settings.max_batches, max_bytes, max_age_s)


class _RunningSource:
    def __init__(self, config: SourceConfig, source: Source) -> None:
        self.config = config
        self.source = source
        self.tasks: list[asyncio.Task[None]] = []


class Agent:
    """In-process use (tests, embedding):

    agent = Agent(config)
    task = asyncio.create_task(agent.run())
    await agent.started.wait()
    ...
    agent.stop()
    await task

    With `config_path`, `reload()` (SIGHUP with `handle_signals`, or a change of the file seen
    every `watch_config_s`) re-reads it and restarts only what changed.
    """

    def __init__(
        self,
        config: AgentConfig,
        buffer: BatchBuffer | None = None,
        config_path: Path | str | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self.config_path = None if config_path is None else Path(config_path)
        self.session_id = uuid.uuid4().hex
        self._owns_buffer = buffer is None
        self.buffer = open_buffer(config) if buffer is None else buffer
        self.publisher = Publisher(config, self.session_id, self.buffer)
        self._sources: dict[str, _RunningSource] = {}
        self.pool: WorkerPool | None = None
        """With `workers` > 1: the worker processes that read the sources instead."""
        if config.workers > 1 and config.sources:
            self.pool = WorkerPool(config, self._submit)
        else:
            for source_config in config.sources:
                self._add_source(source_config)
        self.notifier = notifier or Notifier()
        self.metrics: MetricsServer | None = None
        self.reloads = 0
        """Reloads applied (a file that failed to load does not count)."""
        self.started = asyncio.Event()
        """Set once every task is running (not a sign that anything is connected)."""
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self._watch = None if self.config_path is None else FileWatch(self.config_path)

    @property
    def sources(self) -> list[Source]:
        return [running.source for running in self._sources.values()]

    def stop(self) -> None:
        """Ask `run()` to shut down cleanly; safe to call from a signal handler, more than once."""
        self._stop.set()

    def reload(self) -> None:
        """Ask `run()` to re-read the config file; safe to call from a signal handler."""
        self._reload.set()

    def source_health(self) -> list[SourceHealth]:
        if self.pool is not None:
            return self.pool.health()
        return [entry for source in self.sources for entry in source.health()]

    def health(self) -> GatewayHealth:
        return self.publisher.health(self.source_health())

    def _submit(self, machine: MachineJson, readings: list[str]) -> None:
        # Through the agent, so sources keep their sink when a reload replaces the publisher.
        self.publisher.submit_json(machine, readings)

    async def run(self, handle_signals: bool = False) -> None:
        """Run until `stop()`, or SIGTERM/SIGINT with `handle_signals` (for embedding; `agent run`
        goes through plantmesh.lifecycle.run_service, which handles them the same way)."""
        log.info(
            "agent %s (plant %s) starting: session %s, %d sources, mqtt %s, %s buffer (%d "
            "batches waiting)",
            self.config.gateway_id,
            self.config.plant,
            self.session_id,
            len(self._sources),
            self.config.mqtt.url,
            self.config.buffer.kind,
            len(self.buffer),
        )
        signals = (
            stop_on_signals(self.stop, "agent") if handle_signals else contextlib.nullcontext()
        )
        try:
            with signals, self._sighup():
                self._start_metrics()
                async with asyncio.TaskGroup() as tg:
                    self._tg = tg
                    self.publisher.start(tg)
                    if self.pool is not None:
                        self.pool.start(tg)
                    for running in self._sources.values():
                        self._start_source(running)
                    helpers = [tg.create_task(self._health_loop(), name="health")]
                    if self.notifier.watchdog_interval_s is not None:
                        helpers.append(tg.create_task(self._watchdog_loop(), name="watchdog"))
                    if self.config_path is not None:
                        helpers.append(tg.create_task(self._watch_loop(), name="config-watch"))
                    self.started.set()
                    self.notifier.notify("READY=1")
                    await self._main_loop()
                    self.notifier.notify("STOPPING=1")
                    log.info("agent %s stopping", self.config.gateway_id)
                    if self.pool is not None:
                        await self.pool.stop()  # their last readings reach the publisher
                    for running in self._sources.values():
                        await cancel_and_wait(running.tasks)
                    await cancel_and_wait(helpers)
                    await self.publisher.close()
        finally:
            self._tg = None
            if self.metrics is not None:
                self.metrics.close()
            if self._owns_buffer:
                self.buffer.close()
        stats = self.publisher.stats
        log.info(
            "agent %s stopped: %d readings, %d batches acknowledged, %d dropped, %d kept in the "
            "buffer",
            self.config.gateway_id,
            stats.readings_in,
            stats.batches_acked,
            self.publisher.dropped_batches,
            len(self.buffer),
        )

    async def _main_loop(self) -> None:
        while not self._stop.is_set():
            stop = asyncio.ensure_future(self._stop.wait())
            reload = asyncio.ensure_future(self._reload.wait())
            await asyncio.wait((stop, reload), return_when=asyncio.FIRST_COMPLETED)
            await cancel_and_wait([stop, reload])
            if self._reload.is_set() and not self._stop.is_set():
                self._reload.clear()
                await self._apply_reload()

    # --- sources ----------------------------------------------------------------------------
    def _add_source(self, config: SourceConfig) -> _RunningSource:
        source = build_source(config, self.config.plant, self._submit)
        running = _RunningSource(config, source)
        self._sources[config.name] = running
        return running

    def _start_source(self, running: _RunningSource) -> None:
        assert self._tg is not None
        running.tasks = running.source.start(self._tg)

    # --- reload -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _sighup(self) -> Iterator[None]:
        if self.config_path is None:
            yield
            return
        loop = asyncio.get_running_loop()

        def on_hup() -> None:
            log.info("agent: SIGHUP received, reloading %s", self.config_path)
            self.reload()

        loop.add_signal_handler(signal.SIGHUP, on_hup)
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGHUP)

    async def _watch_loop(self) -> None:
        watch = self._watch
        assert watch is not None
        while True:
            interval = self.config.watch_config_s  # a reload may change it
            await asyncio.sleep(interval if interval > 0 else 5.0)
            if interval > 0 and await asyncio.to_thread(watch.changed):
                log.info("config file %s changed: reloading", watch.path)
                self.reload()

    async def _apply_reload(self) -> None:
        assert self.config_path is not None
        assert self._tg is not None
        self.notifier.notify("RELOADING=1")
        if self._watch is not None:
            await asyncio.to_thread(self._watch.changed)  # what SIGHUP loads is no news to it
        try:
            new = await asyncio.to_thread(load_agent_config, self.config_path)
        except (ConfigError, OSError) as exc:
            log.error("config reload failed, keeping the running config: %s", exc)
            self.notifier.notify("READY=1")
            return
        change = diff(self.config, new)
        for key in change.needs_restart:
            log.warning("config reload: `%s` changes take effect after a restart", key)
        # Keys read once at start keep their running values, so later diffs stay honest.
        new = new.model_copy(update={"buffer": self.config.buffer, "metrics": self.config.metrics})
        log.info("config reload: %s", change.describe())
        self.config = new
        in_workers = self.pool is not None
        if self.pool is not None and (change.stop or change.start):
            # Workers read the config once: they start again with the new one.
            await self.pool.stop()
            self.pool = WorkerPool(new, self._submit)
        for name in () if in_workers else change.stop:
            await cancel_and_wait(self._sources.pop(name).tasks)
        if change.publisher:
            await self._replace_publisher(new)
        if self.pool is not None and (change.stop or change.start):
            self.pool.start(self._tg)
        for source_config in () if in_workers else change.start:
            self._start_source(self._add_source(source_config))
        self.reloads += 1
        self.notifier.notify("READY=1")

    async def _replace_publisher(self, config: AgentConfig) -> None:
        assert self._tg is not None
        old = self.publisher
        # Readings arriving while the old one closes wait in the new one's queue.
        self.publisher = Publisher(
            config,
            self.session_id,
            self.buffer,
            first_seq=old.batcher.next_seq,
            stats=old.stats,
        )
        await old.close()
        self.publisher.start(self._tg)

    # --- health, watchdog, metrics ----------------------------------------------------------
    async def _health_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.health_interval_s):
                    await self._stop.wait()
            if self._stop.is_set():
                return
            self.publisher.publish_health(self.health())

    async def _watchdog_loop(self) -> None:
        """Ping systemd while the event loop runs and the publisher's tasks are alive; a stuck
        loop or a dead publisher stops the pings and systemd restarts the agent. A broker that
        is down is not a reason: the buffer covers that."""
        interval = self.notifier.watchdog_interval_s
        assert interval is not None
        while True:
            self.watchdog_ping()
            await asyncio.sleep(interval)

    def watchdog_ping(self) -> bool:
        """One WATCHDOG=1 if the publisher is alive; True if sent."""
        return self.publisher.healthy and self.notifier.notify("WATCHDOG=1")

    def _start_metrics(self) -> None:
        address = self.config.metrics.address
        if address is None:
            return
        try:
            from edge_agent.metrics import families, snapshot
            from plantmesh.metrics import MetricsServer
        except ImportError as exc:  # prometheus-client comes with plantmesh[edge]
            log.error("metrics endpoint not started: %s", exc)
            return
        try:
            self.metrics = MetricsServer(
                lambda: families(snapshot(self)), address, asyncio.get_running_loop()
            )
        except OSError as exc:  # e.g. the port is taken: readings matter more than metrics
            log.error("metrics endpoint %s:%d not started: %s", *address, exc)
