"""The InfluxDB write path of a poll: requests of at most `max_batch_readings` points, a few in
flight, retried until InfluxDB takes them; and backpressure while it is slow or down.

InfluxDB keeps busy only when its next request is already on its way, hence WRITES_IN_FLIGHT.
A request it refuses for good (a field type conflict, say) is spoiled by one of its batches:
writing batch by batch finds that one for the DLQ, and the points that were fine are simply
written again. Backpressure: a write that has taken `pause_after_s` pauses the partitions and
keeps polling (which fetches nothing), so memory stays flat and the group does not evict a
writer that seems stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from ingest.config import IngestConfig
from ingest.influx import InfluxRejectedError, InfluxSink, InfluxUnavailableError
from ingest.writer.poll import Good
from ingest.writer.stats import WriterStats
from plantmesh.dead_letters import Rejection
from plantmesh.resilience import Backoff, ErrorLog, StopRequestedError, retry_until_stopped
from plantmesh.topics import DlqReason

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 250  # also how quickly an idle writer notices stop()
WRITES_IN_FLIGHT = 2
"""InfluxDB write requests at a time, over all stores: InfluxDB works on one while the next
travels (more only queue up inside InfluxDB)."""
T = TypeVar("T")

Refused = list[tuple[Good, Rejection]]
"""Batches InfluxDB refused for good, with the reason."""


class InfluxStore:
    """Writes good batches to InfluxDB until it takes them or the writer stops."""

    def __init__(
        self, config: IngestConfig, sink: InfluxSink, stats: WriterStats, stop: asyncio.Event
    ) -> None:
        self._sink = sink
        self._stats = stats
        self._stop = stop
        self._limit = config.writer.max_batch_readings
        self._slots = asyncio.Semaphore(WRITES_IN_FLIGHT)
        self._backoff = Backoff(config.backoff.initial_s, config.backoff.max_s)
        self._errors = ErrorLog(log, "InfluxDB write")

    async def write(self, good: Sequence[Good]) -> Refused:
        """Write every good batch, WRITES_IN_FLIGHT requests at a time (InfluxDB works on one
        while the next travels); return those InfluxDB refused for good, with the reason."""
        slots = self._slots

        async def write(chunk: list[Good]) -> Refused:
            async with slots:
                return await self._write_chunk(chunk)

        results = await asyncio.gather(*(write(chunk) for chunk in self._chunks(good)))
        return [item for refused in results for item in refused]

    def _chunks(self, good: Sequence[Good]) -> Iterator[list[Good]]:
        limit = self._limit
        chunk: list[Good] = []
        size = 0
        for item in good:
            count = len(item.lines)
            if chunk and size + count > limit:
                yield chunk
                chunk, size = [], 0
            chunk.append(item)
            size += count
        if chunk:
            yield chunk

    async def _write_chunk(self, chunk: list[Good]) -> Refused:
        try:
            await self._write_lines([line for item in chunk for line in item.lines])
            return []
        except InfluxRejectedError as exc:
            if len(chunk) == 1:
                return [(chunk[0], Rejection(DlqReason.INFLUX_REJECTED, str(exc)))]
        # One bad batch spoils its request: find it by writing batch by batch (points that
        # were fine are simply written again).
        refused: Refused = []
        for item in chunk:
            try:
                await self._write_lines(item.lines)
            except InfluxRejectedError as exc:
                refused.append((item, Rejection(DlqReason.INFLUX_REJECTED, str(exc))))
        return refused

    async def _write_lines(self, lines: Sequence[str]) -> None:
        limit = self._limit
        for start in range(0, len(lines), limit):
            await retry_until_stopped(
                functools.partial(self._sink.write, lines[start : start + limit]),
                stop=self._stop,
                backoff=self._backoff,
                errors=self._errors,
                retry_on=(InfluxUnavailableError,),
                on_retry=self._count_failure,
            )

    def _count_failure(self) -> None:
        self._stats.influx_failures += 1


class Backpressure:
    """Holds the consumer's partitions paused while any write takes longer than `pause_after_s`.

    `fetching` admits one `getmany` at a time: the consume loop's, or the polls that keep a
    paused writer in its group."""

    def __init__(self, pause_after_s: float, stats: WriterStats) -> None:
        self.fetching = asyncio.Lock()
        self._pause_after_s = pause_after_s
        self._stats = stats
        self._pausing = 0  # writes waiting on a slow InfluxDB with the partitions paused

    async def wait(self, consumer: Any, operation: Coroutine[Any, Any, T]) -> T:
        """Await `operation` (a write that retries until InfluxDB takes it). If it takes longer
        than `pause_after_s`, pause the partitions and keep polling meanwhile."""
        task = asyncio.create_task(operation, name="ingest-writer-influx-write")
        try:
            done, _ = await asyncio.wait({task}, timeout=self._pause_after_s)
            if not done:
                await self._paused_until_done(consumer, task)
            return task.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopRequestedError):
                    await task

    async def _paused_until_done(self, consumer: Any, task: asyncio.Task[Any]) -> None:
        self._pausing += 1
        if self._pausing == 1:
            consumer.pause(*consumer.assignment())
            self._stats.pauses += 1
            self._stats.paused = True
            log.warning("InfluxDB is slow or down: partitions paused until the write succeeds")
        try:
            while not task.done():
                async with self.fetching:
                    polled = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
                for tp, batch in polled.items():  # newly assigned during the pause
                    consumer.seek(tp, batch[0].offset)
                    consumer.pause(tp)
        finally:
            self._pausing -= 1
            if self._pausing == 0:
                consumer.resume(*consumer.assignment())
                self._stats.paused = False
                log.info("InfluxDB took the write: partitions resumed")
