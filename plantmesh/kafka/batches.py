"""Messages sent to Kafka a record batch at a time, with one acknowledgement per batch.

`producer.send` costs about 20 µs a message in aiokafka (a future, the partitioner, the
accumulator's bookkeeping), which is as much as paho spends reading the message; the bridge
forwards tens of thousands a second. Here messages are appended to an open record batch per
topic partition and each batch is submitted whole (`producer.send_batch`) as soon as the one
before it was taken by the producer: while a batch waits for Kafka, the next one fills. Low
traffic still goes out at once (a batch of one); high traffic fills batches on its own.

Every batch keeps the entries of its messages, and `on_done(entries, error)` gets them back
when Kafka acknowledged the batch (error None) or refused it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from plantmesh.kafka.clients import Producer

E = TypeVar("E")
Headers = list[tuple[str, bytes]]
TopicPartition = tuple[str, int]


@dataclass(slots=True)
class _Batch(Generic[E]):
    builder: Any  # aiokafka BatchBuilder
    entries: list[E] = field(default_factory=list)
    closed: bool = False


class PartitionBatches(Generic[E]):
    """Open one per producer, on its event loop; `close()` before stopping the producer."""

    def __init__(
        self, producer: Producer, on_done: Callable[[list[E], BaseException | None], None]
    ) -> None:
        self._producer = producer
        self._on_done = on_done
        self._queues: dict[TopicPartition, deque[_Batch[E]]] = {}
        self._senders: dict[TopicPartition, asyncio.Task[None]] = {}
        self._waiting: set[asyncio.Future[Any]] = set()  # submitted, not yet acknowledged

    @property
    def busy(self) -> bool:
        """Something added is not acknowledged (or refused) yet."""
        return bool(self._senders or self._waiting)

    def add(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes,
        headers: Headers,
        entry: E,
        *,
        alone: bool = False,
    ) -> None:
        """Queue one message; `alone` puts it in a batch of its own (to tell which message of a
        refused batch Kafka objects to)."""
        tp = (topic, partition)
        queue = self._queues.get(tp)
        if queue is None:
            queue = self._queues[tp] = deque()
        batch = queue[-1] if queue and not alone else None
        if batch is None or batch.closed or not self._append(batch, key, value, headers, entry):
            batch = _Batch(self._producer.create_batch())
            self._append(batch, key, value, headers, entry)  # an empty batch takes any message
            queue.append(batch)
        if alone:
            batch.closed = True
        if tp not in self._senders:
            self._senders[tp] = asyncio.create_task(self._send(tp), name="kafka-batch-sender")

    @staticmethod
    def _append(
        batch: _Batch[E], key: bytes | None, value: bytes, headers: Headers, entry: E
    ) -> bool:
        if batch.builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
            batch.closed = True  # full
            return False
        batch.entries.append(entry)
        return True

    async def _send(self, tp: TopicPartition) -> None:
        """Submit the partition's batches in order. `send_batch` returns once the producer has
        room for the batch (the one before it was sent), so the next one fills meanwhile."""
        queue = self._queues[tp]
        try:
            while queue:
                batch = queue.popleft()
                batch.closed = True
                batch.builder.close()  # nothing more goes in once submitted
                try:
                    sent = await self._producer.send_batch(batch.builder, tp[0], partition=tp[1])
                except asyncio.CancelledError:
                    self._on_done(batch.entries, asyncio.CancelledError())
                    raise
                except Exception as exc:  # the caller decides: retry, reroute or give up
                    self._on_done(batch.entries, exc)
                    continue
                delivery = asyncio.ensure_future(sent)
                self._waiting.add(delivery)
                delivery.add_done_callback(functools.partial(self._delivered, batch.entries))
        finally:
            del self._senders[tp]

    def _delivered(self, entries: list[E], delivery: asyncio.Future[Any]) -> None:
        self._waiting.discard(delivery)
        if delivery.cancelled():
            self._on_done(entries, asyncio.CancelledError())
        else:
            self._on_done(entries, delivery.exception())

    async def drain(self) -> None:
        """Wait until everything added so far was acknowledged or refused."""
        while self.busy:
            await asyncio.wait({*self._senders.values(), *self._waiting})

    async def close(self) -> None:
        """Give up on what is not acknowledged yet: each entry is reported as cancelled."""
        senders = list(self._senders.values())
        for task in senders:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*senders, return_exceptions=True)
        self._senders.clear()  # a task cancelled before it ran never removed itself
        for queue in self._queues.values():
            while queue:
                self._on_done(queue.popleft().entries, asyncio.CancelledError())
        waiting = list(self._waiting)
        for delivery in waiting:
            delivery.cancel()  # its done callback reports the entries
        await asyncio.gather(*waiting, return_exceptions=True)
