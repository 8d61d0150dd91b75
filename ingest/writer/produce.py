"""Sending a poll's outgoing messages to Kafka until every one is acknowledged.

Everything is sent at once and then awaited, so a poll costs one round of acks, not one per
message; only what failed is sent again, after a capped backoff. What Kafka refuses is handled
by the one shared decision (plantmesh.kafka.refusals): retried, isolated in a record batch of
its own, sent to the DLQ as kafka_rejected, or (a DLQ entry too large on its own) dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from ingest.writer.stats import WriterStats
from plantmesh.dead_letters import RejectionLog
from plantmesh.kafka.clients import Producer
from plantmesh.kafka.refusals import Outgoing, Refusal, dead_letter, decide
from plantmesh.resilience import Backoff, ErrorLog, StopRequestedError, sleep_unless_stopped

log = logging.getLogger(__name__)


def _failed(exc: BaseException) -> asyncio.Future[None]:
    """A send that failed before it was sent, as a future like the others."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future


class Sender:
    """Sends to Kafka through the writer's producer."""

    def __init__(
        self,
        producer: Producer,
        dlq_topic: str,
        backoff: Backoff,
        rejections: RejectionLog,
        stats: WriterStats,
        stop: asyncio.Event,
    ) -> None:
        self._producer = producer
        self._dlq_topic = dlq_topic
        self._backoff = backoff
        self._rejections = rejections
        self._stats = stats
        self._stop = stop
        self._errors = ErrorLog(log, "Kafka produce")

    async def send(self, outgoing: list[Outgoing]) -> list[Outgoing]:
        """Send all, wait for every ack; resend only what failed, until it is all in. Returns
        the DLQ entries made for messages Kafka refused as too large (sent as well)."""
        todo = outgoing
        rerouted: list[Outgoing] = []
        while todo:
            failed: list[Outgoing] = []
            last_error: BaseException | None = None
            for out, error in await self._send_round(todo):
                if not isinstance(error, BaseException):
                    continue
                refusal = decide(error, alone=out.alone, dead_letter=out.is_dead_letter)
                if refusal is Refusal.RETRY:
                    failed.append(out)
                    last_error = error
                elif refusal is Refusal.ISOLATE:
                    failed.append(replace(out, alone=True))  # it, or another of its batch?
                elif refusal is Refusal.DEAD_LETTER:
                    entry = self._dead_letter(out, error)
                    rerouted.append(entry)
                    failed.append(entry)  # sent in the next round, without waiting
                else:
                    self._drop(out)
            await self._settle(last_error)
            todo = failed
        return rerouted

    async def _send_round(self, todo: list[Outgoing]) -> Iterator[tuple[Outgoing, Any]]:
        """Send each message, then wait for all the acks: each with its result or error."""
        sent: list[Any] = []
        for out in todo:
            try:
                future = await self._producer.send(
                    out.topic, value=out.value, key=out.key, headers=out.headers
                )
                if out.alone:  # nothing else joins its record batch while it is out
                    with contextlib.suppress(Exception):  # the gather below reports it
                        await future
            except Exception as exc:  # retried, whatever it is
                future = _failed(exc)
            sent.append(future)
        results = await asyncio.gather(*sent, return_exceptions=True)
        return zip(todo, results, strict=True)

    async def _settle(self, last_error: BaseException | None) -> None:
        """After a round: back off before resending what may pass."""
        if last_error is None:
            self._errors.succeeded()
            self._backoff.reset()
            return
        self._errors.failed(last_error)
        if await sleep_unless_stopped(self._stop, self._backoff.next_delay()):
            raise StopRequestedError("Kafka produce")

    def _dead_letter(self, out: Outgoing, error: BaseException) -> Outgoing:
        entry = dead_letter(out, error, self._dlq_topic)
        assert entry.rejection is not None  # dead_letter always labels the entry
        self._rejections.rejected(entry.rejection, entry.source or out.topic)
        return entry

    def _drop(self, out: Outgoing) -> None:
        self._stats.produce_dropped += 1
        log.error(
            "Kafka refused a DLQ entry as too large; dropped",
            extra={"topic": out.topic, "bytes": len(out.value)},
        )
