"""An idempotent Kafka producer that starts over when its sequence numbers fall out of step.

aiokafka numbers each partition's record batches as it sends them and never takes a number
back: a batch the broker refuses outright (too large for the topic) leaves a gap, and every later
batch for that partition then fails with OutOfOrderSequenceNumber until the producer is restarted
(aio-libs/aiokafka#1017). The Java client bumps its producer epoch in that case; here the
producer is replaced by a fresh one (new producer id, sequences from zero). Sends that failed stay
failed: retrying them is the caller's job, as for any failed send, and their retries go out on
the fresh producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    RecordListTooLargeError,
    UnknownProducerId,
)

from plantmesh.resilience import Backoff

log = logging.getLogger(__name__)

# Errors after which the producer's sequence numbers no longer match the broker's.
BREAKS_SEQUENCE = (
    OutOfOrderSequenceNumber,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    UnknownProducerId,
    InvalidProducerEpoch,
)
_RETIRE_TIMEOUT_S = 10.0
_RENEW_WAIT_S = 10.0


class RenewingProducer:
    """The ingest Producer protocol over a replaceable AIOKafkaProducer."""

    def __init__(
        self, create: Callable[[], AIOKafkaProducer], *, renew_wait_s: float = _RENEW_WAIT_S
    ) -> None:
        self._create = create
        self._renew_wait_s = renew_wait_s
        self._current = create()
        self._renewing: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self.renewals = 0

    async def start(self) -> None:
        await self._current.start()

    async def stop(self) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewing
        await self._current.stop()
        await asyncio.gather(*self._retiring, return_exceptions=True)

    async def flush(self) -> None:
        await (await self._ready()).flush()

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[Any]:
        producer = await self._ready()
        future = await producer.send(
            topic, value=value, key=key, headers=headers, partition=partition
        )
        return self._watched(producer, future)

    def create_batch(self) -> Any:
        return self._current.create_batch()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        producer = await self._ready()
        future = await producer.send_batch(batch, topic, partition=partition)
        return self._watched(producer, future)

    async def partitions_for(self, topic: str) -> set[int]:
        partitions: set[int] = await (await self._ready()).partitions_for(topic)
        return partitions

    async def _ready(self) -> AIOKafkaProducer:
        """The producer to use; while a new one is starting, wait for it a while, then fail
        like a send to an unreachable Kafka (callers retry, or notice that they are stopping)."""
        renewing = self._renewing
        if renewing is not None:
            await asyncio.wait({renewing}, timeout=self._renew_wait_s)
            if not renewing.done() or renewing.cancelled():
                raise KafkaTimeoutError("no Kafka producer: a new one is still starting")
        return self._current

    def _watched(
        self, producer: AIOKafkaProducer, future: asyncio.Future[Any]
    ) -> asyncio.Future[Any]:
        future.add_done_callback(functools.partial(self._check, producer))
        return future

    def _check(self, producer: AIOKafkaProducer, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or producer is not self._current or self._renewing is not None:
            return
        error = future.exception()
        if isinstance(error, BREAKS_SEQUENCE):
            self._renewing = asyncio.create_task(self._renew(error), name="kafka-producer-renew")

    async def _renew(self, cause: BaseException) -> None:
        log.warning(
            "Kafka producer out of step with the broker after %s: starting a new one",
            type(cause).__name__,
        )
        backoff = Backoff(0.2, 5.0)
        while True:
            fresh = self._create()
            try:
                await fresh.start()
                break
            except Exception as exc:  # Kafka unreachable: keep trying, senders wait meanwhile
                log.warning("starting a new Kafka producer failed, will retry: %r", exc)
                await fresh.stop()
                await asyncio.sleep(backoff.next_delay())
        old, self._current = self._current, fresh
        self.renewals += 1
        self._renewing = None
        retire = asyncio.create_task(self._retire(old), name="kafka-producer-retire")
        self._retiring.add(retire)
        retire.add_done_callback(self._retiring.discard)

    @staticmethod
    async def _retire(old: AIOKafkaProducer) -> None:
        """Let the old producer finish what it still has (its failures go to their callers)."""
        try:
            async with asyncio.timeout(_RETIRE_TIMEOUT_S):
                await old.stop()
        except Exception as exc:  # it is out of use either way
            log.debug("retiring the old Kafka producer: %r", exc)
