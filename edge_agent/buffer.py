"""Where batches wait until the broker acknowledged them.

`BatchBuffer` is the seam for the restart-safe disk buffer to come: the publisher only appends,
lists what is unacknowledged (oldest first) and acknowledges. `MemoryBatchBuffer` keeps them in
memory, so a restart loses what was not yet acknowledged.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class BufferedBatch:
    """One encoded ReadingBatch and where it goes."""

    session_id: str
    seq: int
    topic: str
    payload: bytes
    created_at: float = field(default_factory=time.time)
    """Wall-clock time (a disk buffer outlives the process, so not monotonic)."""

    @property
    def key(self) -> tuple[str, int]:
        return (self.session_id, self.seq)


class BatchBuffer(Protocol):
    def put(self, batch: BufferedBatch) -> list[BufferedBatch]:
        """Keep `batch` until acknowledged. When full, the oldest batches are dropped to make
        room and returned, so the caller can count them."""
        ...

    def ack(self, key: tuple[str, int]) -> bool:
        """Forget an acknowledged batch. False if it was not (or no longer) held."""
        ...

    def unacked(self) -> list[BufferedBatch]:
        """Every batch not yet acknowledged, oldest first: what to republish after a reconnect."""
        ...

    def oldest_age_s(self) -> float | None: ...

    def __len__(self) -> int: ...


class MemoryBatchBuffer:
    """Bounded by count and by payload bytes (a gateway has little memory); the newest batch is
    always kept."""

    def __init__(self, max_batches: int, max_bytes: int = 64 * 1024 * 1024) -> None:
        if max_batches < 1 or max_bytes < 1:
            raise ValueError("max_batches and max_bytes must be at least 1")
        self.max_batches = max_batches
        self.max_bytes = max_bytes
        self.bytes = 0
        self._batches: OrderedDict[tuple[str, int], BufferedBatch] = OrderedDict()

    def put(self, batch: BufferedBatch) -> list[BufferedBatch]:
        evicted = []
        while self._batches and (
            len(self._batches) >= self.max_batches
            or self.bytes + len(batch.payload) > self.max_bytes
        ):
            _, oldest = self._batches.popitem(last=False)
            self.bytes -= len(oldest.payload)
            evicted.append(oldest)
        self._batches[batch.key] = batch
        self.bytes += len(batch.payload)
        return evicted

    def ack(self, key: tuple[str, int]) -> bool:
        batch = self._batches.pop(key, None)
        if batch is None:
            return False
        self.bytes -= len(batch.payload)
        return True

    def unacked(self) -> list[BufferedBatch]:
        return list(self._batches.values())

    def oldest_age_s(self) -> float | None:
        for batch in self._batches.values():
            return max(0.0, round(time.time() - batch.created_at, 3))
        return None

    def __len__(self) -> int:
        return len(self._batches)
