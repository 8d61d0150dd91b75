"""What every Source (edge_agent.sources) must do against a real server, as one test class each
implementation subclasses (the way FastStream's tests/brokers/base is run per broker).

A subclass names its implementation and serves a PLC: `serve(port)` is an async context manager
that starts a real server on that port (run in a thread of its own, so the test's event loop
holds only the source's tasks), `source_config(port)` configures a source for it, `write`
changes the `changing` signal on the server, and `expected` says what the first readings are.
The base class is not collected (no Test prefix); each subclass is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

import pytest
from pydantic import TypeAdapter

from edge_agent.config import SourceConfig
from edge_agent.sources import ReadingSink, Source, decoding
from edge_agent.sources.registry import build_source
from plantmesh.contracts import Quality, Reading
from tests.support.loop_thread import Served, served_in_thread
from tests.support.ports import free_port
from tests.support.waiting import SCALE, async_wait_for

PlcT = TypeVar("PlcT")
Value = float | bool | str
SeriesKey = tuple[str, str]
"""(asset key plant/area/line/machine, signal)"""

_SOURCE_CONFIG: TypeAdapter[SourceConfig] = TypeAdapter(SourceConfig)


@dataclass
class RunningSource:
    source: Source
    tasks: list[asyncio.Task[None]]
    readings: list[Reading] = field(default_factory=list)

    def series(self) -> set[SeriesKey]:
        return {(r.asset.key, r.signal) for r in list(self.readings)}

    def values(self, key: SeriesKey) -> list[Value]:
        return [r.value for r in list(self.readings) if (r.asset.key, r.signal) == key]


class SourceContract(Generic[PlcT]):
    PLANT: ClassVar[str] = "plant-a"
    NEW_VALUE: ClassVar[float] = 321.0
    """Written to the `changing` signal: a whole number, so every register type can hold it."""
    STOP_WITHIN_S: ClassVar[float] = 3.0
    """How long a cancelled source may take to end (an OPC UA source says goodbye first)."""

    implementation: ClassVar[type]
    expected: ClassVar[dict[SeriesKey, tuple[Value, str | None]]]
    """Every series the configured source reads, with its value on a fresh server and its unit."""
    changing: ClassVar[SeriesKey]
    """The series `write` changes."""

    # --- what a subclass provides -------------------------------------------------------------
    def serve(self, port: int) -> AbstractAsyncContextManager[PlcT]:
        """A real server on `port` holding the `expected` values."""
        raise NotImplementedError

    async def write(self, plc: PlcT, value: float) -> None:
        """Change the `changing` signal to `value` (runs in the server's event loop)."""
        raise NotImplementedError

    def source_config(self, port: int) -> dict[str, Any]:
        """A source config (as in the agent's YAML) reading `expected` from the server on `port`,
        with short timeouts and backoff so an outage is noticed and recovered in a second."""
        raise NotImplementedError

    # --- fixtures and helpers -----------------------------------------------------------------
    @pytest.fixture
    async def plc(self) -> AsyncIterator[Served[PlcT]]:
        name = f"plc-{type(self).__name__}"
        async with served_in_thread(self.serve, free_port(), name) as served:
            yield served

    def build(self, port: int, sink: ReadingSink) -> Source:
        """The source as the agent makes it: from its config through the registry."""
        return build_source(
            _SOURCE_CONFIG.validate_python(self.source_config(port)), self.PLANT, sink
        )

    @asynccontextmanager
    async def running(self, port: int) -> AsyncIterator[RunningSource]:
        """The source's tasks in a TaskGroup, as in the agent (a task that raises fails the
        test); cancelled on exit."""
        readings: list[Reading] = []
        source = self.build(port, decoding(readings.append))
        async with asyncio.TaskGroup() as tg:
            running = RunningSource(source, source.start(tg), readings)
            try:
                yield running
            finally:
                for task in running.tasks:
                    task.cancel()

    async def until_streaming(self, running: RunningSource) -> None:
        async def every_series() -> bool:
            connected = all(h.connected for h in running.source.health())
            return connected and running.series() >= set(self.expected)

        await async_wait_for(
            every_series, 20, f"a first reading of each of {sorted(self.expected)}"
        )

    async def until_value(self, running: RunningSource, value: float) -> None:
        async def arrived() -> bool:
            return value in running.values(self.changing)

        await async_wait_for(arrived, 20, f"{value} in {self.changing}")

    # --- the contract -------------------------------------------------------------------------
    def test_the_registry_builds_it_from_its_type(self) -> None:
        source = self.build(free_port(), lambda _: None)
        assert isinstance(source, self.implementation)
        assert source.name == self.source_config(1)["name"]

    async def test_delivers_the_configured_series_with_aware_timestamps(
        self, plc: Served[PlcT]
    ) -> None:
        async with self.running(plc.port) as running:
            await self.until_streaming(running)
        readings = list(running.readings)
        assert running.series() == set(self.expected)  # nothing it was not asked for
        for key, (value, unit) in self.expected.items():
            first = next(r for r in readings if (r.asset.key, r.signal) == key)
            assert (first.value, first.unit) == (value, unit), key
        for reading in readings:
            assert reading.asset.plant == self.PLANT
            assert reading.quality == Quality.GOOD
            # Sources build readings without validation (trusted_reading): they must be valid.
            assert Reading.model_validate(reading.model_dump()) == reading
            assert reading.source_ts.utcoffset() is not None, "naive source_ts"
            assert reading.gateway_ts.utcoffset() is not None, "naive gateway_ts"
            assert reading.source_ts <= reading.gateway_ts <= datetime.now(UTC)

    async def test_a_value_changed_on_the_server_arrives(self, plc: Served[PlcT]) -> None:
        async with self.running(plc.port) as running:
            await self.until_streaming(running)
            await plc.run(self.write(plc.handle, self.NEW_VALUE))
            await self.until_value(running, self.NEW_VALUE)
        assert running.values(self.changing)[-1] == self.NEW_VALUE

    async def test_health_reports_each_connection(self, plc: Served[PlcT]) -> None:
        async with self.running(plc.port) as running:
            source = running.source
            await self.until_streaming(running)
            health = source.health()
            assert health, "at least one connection"
            for entry in health:
                assert entry.name.startswith(source.name), entry.name
                assert entry.connected, entry
                assert entry.errors == 0, entry
                assert entry.last_seen_age_s is not None, entry
                assert entry.last_seen_age_s < 10 * SCALE, entry
        assert not any(entry.connected for entry in source.health())  # stopped

    async def test_stops_promptly_when_cancelled_and_leaks_no_task(self, plc: Served[PlcT]) -> None:
        before = asyncio.all_tasks()
        async with self.running(plc.port) as running:
            await self.until_streaming(running)
            tasks = running.tasks
            assert tasks, "a source runs at least one task"
            for task in tasks:
                assert task.get_name().startswith(f"source:{running.source.name}"), task
            started = time.monotonic()
            for task in tasks:
                task.cancel()  # once: a source must not need the agent's second cancel
            _, pending = await asyncio.wait(tasks, timeout=self.STOP_WITHIN_S * SCALE)
            assert not pending, f"still running {self.STOP_WITHIN_S}s after cancel: {pending}"
        took = time.monotonic() - started
        assert all(task.cancelled() for task in tasks), "ended by the cancellation, not an error"
        assert not any(entry.connected for entry in running.source.health())

        async def no_task_left() -> bool:
            current = asyncio.current_task()
            return not [t for t in asyncio.all_tasks() if t not in before and t is not current]

        await async_wait_for(no_task_left, 2, "the source's helper tasks to end")
        assert took < self.STOP_WITHIN_S * SCALE

    async def test_a_server_that_is_not_there_is_retried_and_reported(self) -> None:
        async with self.running(free_port()) as running:
            source = running.source

            async def failed_twice() -> bool:
                return all(entry.errors >= 2 for entry in source.health())

            await async_wait_for(failed_twice, 10, "two failed connection attempts")
            assert not any(task.done() for task in running.tasks), "trouble must not end a task"
            assert not any(entry.connected for entry in source.health())
            assert all(entry.last_seen_age_s is None for entry in source.health())
        assert running.readings == []

    async def test_survives_the_server_going_away_and_coming_back(self, plc: Served[PlcT]) -> None:
        async with self.running(plc.port) as running:
            source = running.source
            await self.until_streaming(running)
            await plc.stop()

            async def reported() -> bool:
                return all(not e.connected and e.errors >= 1 for e in source.health())

            await async_wait_for(reported, 10, "the source to report the server gone")
            assert not any(task.done() for task in running.tasks), "an outage must not end a task"
            await plc.start()  # the same port, fresh values

            async def connected_again() -> bool:
                return all(entry.connected for entry in source.health())

            await async_wait_for(connected_again, 20, "the source to connect again")
            await plc.run(self.write(plc.handle, self.NEW_VALUE))
            await self.until_value(running, self.NEW_VALUE)
