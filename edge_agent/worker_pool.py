"""The agent's side of `workers: N`: worker processes that read the sources, supervised.

The work is spread round robin in config order: an OPC UA source whole (one session), a Modbus
source device by device (each device has its own connection anyway). Each worker (edge_agent.worker_process) gets the config on its stdin and sends
readings and health back on its stdout; readings go into the agent's publisher, so batching,
sequence numbers, the disk buffer and the MQTT session stay in one place and one session.

A worker that dies (a crash, the OOM killer, kill -9) is logged and started again with
backoff; what it had read and not yet sent (at most FLUSH_S of readings) is lost, as a crashed
agent's queue would be. On stop, each worker gets SIGTERM, stops its sources and sends what they
read last; the pool hands that on before the publisher closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable

from edge_agent.config import (
    AgentConfig,
    ModbusDeviceConfig,
    ModbusSourceConfig,
    SourceConfig,
)
from edge_agent.reading_json import MachineJson
from edge_agent.tasks import cancel_and_wait
from edge_agent.worker_frames import HEALTH, READINGS, SETUP, frame, read_frame
from plantmesh.contracts import AssetPath, SourceHealth
from plantmesh.logs import JsonFormatter
from plantmesh.resilience import Backoff

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 15.0
"""How long a worker may take to stop its sources before it is killed."""

STEADY_S = 60.0
"""A worker that ran this long before it ended is started again after the shortest delay."""

Submit = Callable[[MachineJson, list[str]], None]


def assignments(config: AgentConfig) -> list[list[SourceConfig]]:
    """The sources each worker reads: the units of work (an OPC UA source, one Modbus device)
    round robin in config order, a Modbus source cut down to its devices in that worker; no
    worker without a unit."""
    units: list[tuple[SourceConfig, ModbusDeviceConfig | None]] = []
    for source in config.sources:
        if isinstance(source, ModbusSourceConfig):
            units.extend((source, device) for device in source.devices)
        else:
            units.append((source, None))
    count = min(config.workers, len(units))
    parts: list[list[SourceConfig]] = []
    for first in range(count):
        mine = units[first::count]
        part: list[SourceConfig] = []
        for source in config.sources:
            devices = [d for s, d in mine if s is source and d is not None]
            if devices:
                assert isinstance(source, ModbusSourceConfig)
                part.append(source.model_copy(update={"devices": devices}))
            elif any(s is source for s, _ in mine):
                part.append(source)
        parts.append(part)
    return parts


def health_names(source: SourceConfig) -> list[str]:
    """What the source's health entries are called (a Modbus source has one per device, as
    edge_agent.sources.modbus names them)."""
    if isinstance(source, ModbusSourceConfig):
        return [f"{source.name}.{device.machine}"[:64] for device in source.devices]
    return [source.name]


def _log_settings() -> tuple[str, str]:
    root = logging.getLogger()
    json_format = any(isinstance(h.formatter, JsonFormatter) for h in root.handlers)
    return logging.getLevelName(root.getEffectiveLevel()).lower(), (
        "json" if json_format else "text"
    )


class Worker:
    """One worker process and what it last said about its sources."""

    def __init__(self, index: int, sources: list[SourceConfig]) -> None:
        self.index = index
        self.sources = sources
        self.process: asyncio.subprocess.Process | None = None
        self.health: list[SourceHealth] = []
        self.starts = 0

    @property
    def name(self) -> str:
        return f"worker {self.index} ({', '.join(self.source_names)})"

    @property
    def source_names(self) -> list[str]:
        return [
            f"{s.name} ({len(s.devices)} devices)" if isinstance(s, ModbusSourceConfig) else s.name
            for s in self.sources
        ]


class WorkerPool:
    def __init__(self, config: AgentConfig, submit: Submit) -> None:
        self.config = config
        self._submit = submit
        self.workers = [Worker(i, part) for i, part in enumerate(assignments(config))]
        self._machines: dict[str, MachineJson] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def restarts(self) -> int:
        """Worker processes started again after one ended unasked."""
        return sum(max(0, w.starts - 1) for w in self.workers)

    def start(self, tg: asyncio.TaskGroup) -> None:
        self._stopping = False
        self._tasks = [
            tg.create_task(self._supervise(w), name=f"worker:{w.index}") for w in self.workers
        ]

    def health(self) -> list[SourceHealth]:
        """The latest health each worker sent; a source of a worker that has not said anything
        yet is reported not connected."""
        entries: list[SourceHealth] = []
        for worker in self.workers:
            if worker.health:
                entries.extend(worker.health)
            else:
                entries.extend(
                    SourceHealth(name=name, connected=False, errors=0, last_seen_age_s=None)
                    for source in worker.sources
                    for name in health_names(source)
                )
        return entries

    async def stop(self) -> None:
        """SIGTERM to every worker, wait until each has sent its last readings and ended (kill
        after STOP_TIMEOUT_S), then end the supervisors."""
        self._stopping = True
        running = [w.process for w in self.workers if w.process and w.process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                log.warning("worker pid %d did not stop; killing it", process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        # The supervisors end once they have read their worker's output to the end.
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT_S)
            await cancel_and_wait(list(pending))
        self._tasks = []

    async def _supervise(self, worker: Worker) -> None:
        backoff = Backoff(1.0, 30.0)
        loop = asyncio.get_running_loop()
        while not self._stopping:
            started = loop.time()
            code = await self._run(worker)
            if self._stopping:
                return
            if loop.time() - started > STEADY_S:
                backoff.reset()  # a crash after a good run is not a crash loop
            delay = backoff.next_delay()
            log.error("%s ended (exit %s); starting it again in %.1f s", worker.name, code, delay)
            await asyncio.sleep(delay)

    async def _run(self, worker: Worker) -> int | None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "edge_agent.worker_process",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        worker.process = process
        worker.starts += 1
        worker.health = []
        assert process.stdin is not None
        assert process.stdout is not None
        level, fmt = _log_settings()
        part = self.config.model_copy(update={"sources": worker.sources})
        try:
            # stdin stays open: the worker ends when it closes, so it never outlives the agent.
            process.stdin.write(frame(SETUP, [part, level, fmt]))
            await process.stdin.drain()
            log.info("%s started (pid %d)", worker.name, process.pid)
            while (message := await read_frame(process.stdout)) is not None:
                kind, body = message
                if kind == READINGS:
                    for key, asset_json, texts in body:
                        self._submit(self._machine(key, asset_json), texts)
                elif kind == HEALTH:
                    worker.health = [SourceHealth.model_validate(h) for h in body]
        except (ConnectionError, OSError) as exc:
            log.error("%s: pipe failed: %s", worker.name, exc)
        finally:
            with contextlib.suppress(ProcessLookupError):
                if process.returncode is None and not self._stopping:
                    process.kill()
            process.stdin.close()
            code = await process.wait()
        return code

    def _machine(self, key: str, asset_json: str) -> MachineJson:
        machine = self._machines.get(key)
        if machine is None:
            machine = self._machines[key] = MachineJson(AssetPath.model_validate_json(asset_json))
        return machine
