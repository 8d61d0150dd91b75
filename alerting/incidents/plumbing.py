"""What both loops of the incident stage need around Kafka: retrying until it works or the stage
stops, sending a batch of records and knowing every one of them was acknowledged, and one line
per kind of bad record."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from plantmesh.connections import BackoffSettings
from plantmesh.contracts import DecodeError
from plantmesh.kafka.clients import Producer
from plantmesh.resilience import Backoff, ErrorLog, retry_until_stopped

T = TypeVar("T")

Headers = list[tuple[str, bytes]]


class Retrier:
    def __init__(self, stop: asyncio.Event, backoff: BackoffSettings, log: logging.Logger) -> None:
        self.stop = stop
        self.backoff = backoff
        self.log = log

    async def __call__(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt` until it works; raise StopRequestedError if stopped before it did."""
        return await retry_until_stopped(
            attempt,
            stop=self.stop,
            backoff=Backoff(self.backoff.initial_s, self.backoff.max_s),
            errors=ErrorLog(self.log, what),
            retry_on=(KafkaError, OSError),
        )


async def send_all(
    producer: Producer,
    topic: str,
    records: Sequence[tuple[bytes, bytes]],
    headers: Headers | None = None,
) -> None:
    """Every (key, value) acknowledged (acks=all) before this returns; raises the first error.
    A retry sends them all again: readers of both topics take duplicates."""
    pending: list[Awaitable[object]] = []
    error: BaseException | None = None
    try:
        for key, value in records:
            pending.append(await producer.send(topic, value, key=key, headers=headers))
    except KafkaError as exc:
        error = exc
    # Every accepted send awaited, even after a failure, so no delivery result goes unobserved.
    results = await asyncio.gather(*pending, return_exceptions=True)
    error = error or next((r for r in results if isinstance(r, BaseException)), None)
    if error is not None:
        raise error


async def send_fitting(
    producer: Producer,
    topic: str,
    records: Sequence[tuple[bytes, bytes]],
    headers: Headers | None = None,
) -> list[int]:
    """send_all, but a record Kafka refuses as too large (final: it never fits) is left out
    rather than retried forever: the indexes of those left out. Other errors raise."""
    try:
        await send_all(producer, topic, records, headers)
        return []
    except MessageSizeTooLargeError:
        pass  # which one(s) Kafka does not say: each again on its own (duplicates are fine)
    refused = []
    for index, record in enumerate(records):
        try:
            await send_all(producer, topic, [record], headers)
        except MessageSizeTooLargeError:
            refused.append(index)
    return refused


class Undecodable:
    """Records that are not what their topic carries: counted by reason (also into `total`,
    every skip by reason), the first of each reason logged with where it is and what is wrong
    (a flood of them writes one line)."""

    def __init__(
        self, log: logging.Logger, counts: Counter[str], total: Counter[str] | None = None
    ) -> None:
        self.counts = counts
        self.total = total
        self._log = ErrorLog(log, "decoding")

    def skip(self, record: ConsumerRecord[bytes, bytes], error: DecodeError) -> None:
        reason = str(error.reason)
        self.counts[reason] += 1
        if self.total is not None:
            self.total[reason] += 1
        self._log.once(
            reason,
            "skipping a record that is not an alert event (%s) at %s[%d]@%d: %s "
            "(further ones only counted)",
            reason,
            record.topic,
            record.partition,
            record.offset,
            "; ".join(error.details[:3]),
        )
