"""Holding a consumer's records back while a rebalance's take-over is still under way.

aiokafka calls the rebalance listener from its coordinator task, and `getmany` returns records
of newly assigned partitions as soon as the assignment is known, before `on_partitions_assigned`
has finished. A service that restores state there (a snapshot, a checkpoint, a duplicate window)
and seeks would otherwise see records that were fetched before the restore: applied to state
that the restore then replaces, or evaluated twice. The gate closes when partitions are revoked
(aiokafka does that before every join, the first one too) and opens when the take-over is done;
`epoch` changes at both, so a poll can tell whether a rebalance happened while it waited.
"""

from __future__ import annotations

import asyncio


class AssignmentGate:
    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop
        self._open = asyncio.Event()
        self.epoch = 0
        """Changes when partitions are revoked and when their successors are in place."""

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def spanned(self, epoch: int) -> bool:
        """Whether a poll that began at `epoch` may hold records from before a take-over: a
        rebalance began or ended since, or one is under way."""
        return epoch != self.epoch or not self.is_open

    def close(self) -> None:
        """From `on_partitions_revoked`, before its first await."""
        self._open.clear()
        self.epoch += 1

    def open(self) -> None:
        """From `on_partitions_assigned`, once the take-over is done (in a `finally`: a
        take-over that failed must not hold the consumer forever)."""
        self._open.set()
        self.epoch += 1

    async def wait(self) -> bool:
        """Until the gate is open (True) or the service is stopping first (False)."""
        if self._open.is_set():
            return True
        opened = asyncio.ensure_future(self._open.wait())
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({opened, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            opened.cancel()
            stopping.cancel()
        return self._open.is_set()
