"""When shard checkpoints are written.

Between polls, the most overdue changed shard is pickled (on the event loop, so the engine is
seen as of its offsets) and written in the background: the poll loop goes on while Kafka takes a
record of several megabytes, which took a few hundred milliseconds of every checkpoint off the
latency of alerts. One background write at a time. When partitions are handed over, and at a
clean stop, the checkpoints are written and awaited, after the write in flight: the compacted
topic keeps the last record of a key, so the older one must land first.

Shared by the detection service (shards.py) and the network-incident stage
(incidents/partitions.py): each keeps one engine per input partition in something shaped like
`CheckpointedShard`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Iterable
from typing import Protocol

from aiokafka.errors import KafkaError

from alerting.checkpoint import Checkpoint
from alerting.state_store import CheckpointTooLargeError, Snapshot, StateStore, snapshot
from plantmesh.resilience import ErrorLog

log = logging.getLogger(__name__)


class CheckpointedShard(Protocol):
    partition: int
    dirty: bool
    """Changed since its last checkpoint."""
    checkpointed: float
    """When its last checkpoint was taken (the Checkpointer's clock)."""

    def checkpoint(self) -> Checkpoint: ...


class CheckpointCounts(Protocol):
    checkpoints: int


def _written(shard: CheckpointedShard, at: float) -> None:
    """The shard as of its checkpoint: clean. The events published before a crash that its
    replay has not made again yet are still expected: a replay slower than the interval has not
    reached them (each is skipped once, then forgotten)."""
    shard.dirty = False
    shard.checkpointed = at


class Checkpointer:
    def __init__(
        self,
        store: StateStore,
        interval_s: float,
        stats: CheckpointCounts,
        clock: Callable[[], float] = time.monotonic,
        *,
        name: str = "alerting",
    ) -> None:
        """`clock`: the clock of Shard.checkpointed; `name`: of the background write tasks."""
        self.store = store
        self.clock = clock
        self.interval_s = interval_s
        self.stats = stats
        self.name = name
        self._errors = ErrorLog(log, "checkpoint")
        self._writing: asyncio.Task[None] | None = None
        self._last_turn = 0.0

    def turn(self, shards: Collection[CheckpointedShard]) -> None:
        """Between polls (the service's lock held): the most overdue changed shard, once its
        interval has passed, pickled now and written in the background. Not while a write is
        in flight, and not sooner than interval / shards after the last turn: shards that were
        taken over together fall due together, and back to back their pauses added up (a
        stall of 0.7 s every interval in bench_alerting); spread out, each pause stands alone."""
        if self._writing is not None and not self._writing.done():
            return
        now = self.clock()
        if now - self._last_turn < self.interval_s / max(1, len(shards)):
            return
        due = [s for s in shards if s.dirty and now - s.checkpointed >= self.interval_s]
        if not due:
            return
        shard = min(due, key=lambda s: s.checkpointed)
        self._last_turn = now
        taken = snapshot(shard.checkpoint())
        _written(shard, now)
        self._writing = asyncio.create_task(
            self._write(shard, taken), name=f"{self.name}.checkpoint.{shard.partition}"
        )

    async def _write(self, shard: CheckpointedShard, taken: Snapshot) -> None:
        try:
            await self.store.write([taken])
        except (KafkaError, CheckpointTooLargeError) as exc:
            # Not fatal: the previous checkpoint stands (a restart replays a little further),
            # and the shard's next turn tries again.
            shard.dirty = True
            self._errors.failed(exc)
        else:
            self.stats.checkpoints += 1
            self._errors.succeeded()

    async def settle(self) -> None:
        """The background write in flight, if any, finished (it reports its own errors)."""
        writing, self._writing = self._writing, None
        if writing is not None:
            await writing

    async def flush(self, shards: Iterable[CheckpointedShard]) -> None:
        """Every changed shard of `shards` checkpointed before this returns (hand-over, stop);
        raises KafkaError or CheckpointTooLargeError."""
        await self.settle()
        dirty = [s for s in shards if s.dirty]
        if not dirty:
            return
        await self.store.write([snapshot(s.checkpoint()) for s in dirty])
        for shard in dirty:
            _written(shard, self.clock())
        self.stats.checkpoints += len(dirty)
