"""Where batches wait until the broker acknowledged them.

The publisher appends every batch (`put`), reads what to send in buffer order (`read`, after the
last id it sent on this connection), and acknowledges by id (`ack`). Ids grow with every `put`, so
buffer order is creation order, across sessions too. Two implementations: `DiskBatchBuffer`
(edge_agent.disk_buffer, the default: survives restarts and power loss) and `MemoryBatchBuffer`
(tests and `buffer.kind: memory`: a restart loses what was not acknowledged).
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class NewBatch:
    """One encoded ReadingBatch and where it goes, before the buffer gave it an id."""

    session_id: str
    seq: int
    topic: str
    payload: bytes
    readings: int = 0
    """How many readings the batch carries (for the readings-out count)."""
    created_at: float = field(default_factory=time.time)
    """Wall-clock time (a disk buffer outlives the process, so not monotonic)."""


@dataclass(frozen=True)
class BufferedBatch(NewBatch):
    id: int = 0
    """Position in the buffer: larger ids were put later."""


@dataclass
class BufferDrops:
    """Batches the buffer gave up on, by reason (each also counts in the gateway's health)."""

    full: int = 0
    """Pushed out of a full buffer (count or size limit), oldest first."""
    expired: int = 0
    """Older than the age limit."""
    torn: int = 0
    """Being written when the process or the machine died (found on the next start)."""
    failed: int = 0
    """Could not be written (disk full or failing)."""

    @property
    def total(self) -> int:
        return self.full + self.expired + self.torn + self.failed


class BatchBuffer(Protocol):
    persistent: bool
    """True when unacknowledged batches outlive the process (then they are not lost on stop)."""
    drops: BufferDrops

    def put(self, batches: Sequence[NewBatch]) -> int:
        """Keep `batches` until acknowledged; returns how many of the oldest were dropped to make
        room (also added to `drops`). The newest batch is always kept."""
        ...

    def read(self, after_id: int, limit: int) -> list[BufferedBatch]:
        """Up to `limit` unacknowledged batches with ids above `after_id`, oldest first."""
        ...

    def ack(self, batch_id: int) -> bool:
        """Forget an acknowledged batch. False if it was not (or no longer) held."""
        ...

    def expire(self) -> int:
        """Drop batches older than the age limit; returns how many (also added to `drops`)."""
        ...

    def sync(self) -> None:
        """Make the acknowledgements so far durable (a disk buffer batches them)."""
        ...

    def oldest_age_s(self) -> float | None: ...

    @property
    def bytes(self) -> int:
        """Payload bytes of the unacknowledged batches."""
        ...

    def close(self) -> None: ...

    def __len__(self) -> int: ...


class MemoryBatchBuffer:
    """Bounded by count, payload bytes and age (a gateway has little memory)."""

    persistent = False

    def __init__(
        self, max_batches: int, max_bytes: int = 64 * 1024 * 1024, max_age_s: float | None = None
    ) -> None:
        if max_batches < 1 or max_bytes < 1:
            raise ValueError("max_batches and max_bytes must be at least 1")
        self.max_batches = max_batches
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.drops = BufferDrops()
        self._bytes = 0
        self._next_id = 1
        self._batches: dict[int, BufferedBatch] = {}
        # Ids in put order; acked ones are skipped and trimmed from the front lazily.
        self._ids: list[int] = []
        self._head = 0

    @property
    def bytes(self) -> int:
        return self._bytes

    def put(self, batches: Sequence[NewBatch]) -> int:
        dropped = 0
        if self._batches:
            self._oldest_id()  # trims the id list now and then
        for new in batches:
            while self._batches and (
                len(self._batches) >= self.max_batches
                or self._bytes + len(new.payload) > self.max_bytes
            ):
                self._remove(self._oldest_id())
                dropped += 1
            batch = BufferedBatch(**vars(new), id=self._next_id)
            self._next_id += 1
            self._batches[batch.id] = batch
            self._ids.append(batch.id)
            self._bytes += len(batch.payload)
        self.drops.full += dropped
        return dropped

    def read(self, after_id: int, limit: int) -> list[BufferedBatch]:
        found: list[BufferedBatch] = []
        i = max(self._head, bisect_right(self._ids, after_id))
        while i < len(self._ids) and len(found) < limit:
            batch = self._batches.get(self._ids[i])
            if batch is not None:
                found.append(batch)
            i += 1
        return found

    def ack(self, batch_id: int) -> bool:
        if batch_id not in self._batches:
            return False
        self._remove(batch_id)
        if not self._batches:
            self._ids.clear()
            self._head = 0
        return True

    def expire(self) -> int:
        if self.max_age_s is None:
            return 0
        cutoff = time.time() - self.max_age_s
        expired = 0
        while self._batches and self._batches[self._oldest_id()].created_at < cutoff:
            self._remove(self._oldest_id())
            expired += 1
        self.drops.expired += expired
        return expired

    def sync(self) -> None:
        pass

    def oldest_age_s(self) -> float | None:
        if not self._batches:
            return None
        return max(0.0, round(time.time() - self._batches[self._oldest_id()].created_at, 3))

    def close(self) -> None:
        pass

    def __len__(self) -> int:
        return len(self._batches)

    def _oldest_id(self) -> int:
        while self._ids[self._head] not in self._batches:
            self._head += 1
        if self._head > 1024 and self._head * 2 > len(self._ids):
            del self._ids[: self._head]
            self._head = 0
        return self._ids[self._head]

    def _remove(self, batch_id: int) -> None:
        batch = self._batches.pop(batch_id)
        self._bytes -= len(batch.payload)
