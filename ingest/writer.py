"""The writer: Kafka telemetry.raw -> InfluxDB, telemetry.normalized and telemetry.dlq.

Per poll: decode every message; bad ones go to the DLQ with their original bytes and the reason;
good ones are written to InfluxDB (the same points again on a replay, so at-least-once leaves no
duplicates), then forwarded re-encoded to telemetry.normalized. Offsets are committed only when
InfluxDB and Kafka have acknowledged everything of the poll. While InfluxDB is down the writer
retries the same points and fetches nothing new.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.structs import TopicPartition

from ingest.config import IngestConfig
from ingest.dlq import (
    REASON_INFLUX_REJECTED,
    Decoded,
    Headers,
    Rejection,
    RejectionLog,
    decode_raw,
    dlq_headers,
    kafka_source,
)
from ingest.influx import InfluxRejectedError, InfluxSink, InfluxUnavailableError
from ingest.kafka_clients import Producer, ProducerFactory, make_producer, start_client
from plantmesh.contracts import encode
from plantmesh.kafka_admin import ensure_topics
from plantmesh.resilience import (
    Backoff,
    ErrorLog,
    StopRequestedError,
    retry_until_stopped,
    sleep_unless_stopped,
)

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 250  # also how quickly an idle writer notices stop()


@dataclass
class WriterStats:
    """Counters, read by tests and (later) metrics."""

    messages: int = 0
    """Raw messages consumed."""
    batches: int = 0
    """Reading batches written to InfluxDB and forwarded to telemetry.normalized."""
    written_points: int = 0
    dlq: int = 0
    dlq_by_reason: dict[str, int] = field(default_factory=dict)
    influx_failures: int = 0
    """Write attempts InfluxDB did not take (each was retried)."""
    produce_dropped: int = 0
    """Messages Kafka refused for good (too large); logged as errors."""
    commits: int = 0
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    """(topic, partition) -> the next offset this writer committed."""


@dataclass(frozen=True)
class _Good:
    record: Any  # aiokafka ConsumerRecord
    decoded: Decoded


@dataclass(frozen=True)
class _Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    dlq_reason: str | None = None


class Writer:
    """`await Writer(config).run()` until `stop()`; `ready` is set once the consumer is started.
    One run per instance."""

    def __init__(
        self, config: IngestConfig, *, producer_factory: ProducerFactory | None = None
    ) -> None:
        self.config = config
        self.topics = config.topics
        self.stats = WriterStats()
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._producer_factory = producer_factory or (lambda: make_producer(config.kafka, "writer"))
        self._producer: Producer | None = None
        self._consumer: Any = None
        self._sink = InfluxSink(config.influxdb)
        self._influx_backoff = Backoff(config.backoff.initial_s, config.backoff.max_s)
        self._influx_errors = ErrorLog(log, "InfluxDB write")
        self._kafka_backoff = Backoff(config.backoff.initial_s, config.backoff.max_s)
        self._produce_errors = ErrorLog(log, "Kafka produce")
        self._poll_errors = ErrorLog(log, "Kafka fetch")
        self._rejections = RejectionLog(log)
        self._started = False

    def stop(self) -> None:
        """Finish the batch in hand (commit included), then return from `run()`."""
        self._stop.set()

    # --- lifecycle ------------------------------------------------------------------------
    async def run(self) -> None:
        if self._started:
            raise RuntimeError("a Writer runs once; create a new one")
        self._started = True
        async with contextlib.AsyncExitStack() as cleanup:
            try:
                await self._start(cleanup)
            except StopRequestedError:
                return
            log.info(
                "writer starting",
                extra={
                    "raw": self.topics.telemetry_raw,
                    "group": self.config.writer.group_id,
                    "influxdb": self.config.influxdb.url,
                    "bucket": self.config.influxdb.bucket,
                },
            )
            self.ready.set()
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._consume_loop(), name="ingest-writer-consume")
            log.info(
                "writer stopped",
                extra={"batches": self.stats.batches, "points": self.stats.written_points},
            )

    async def _start(self, cleanup: contextlib.AsyncExitStack) -> None:
        """Sinks before the source: InfluxDB and the producer before the consumer."""
        cfg = self.config
        backoff = Backoff(cfg.backoff.initial_s, cfg.backoff.max_s)

        async def retry(operation: Any, what: str) -> Any:
            return await retry_until_stopped(
                operation, stop=self._stop, backoff=backoff, errors=ErrorLog(log, what)
            )

        if cfg.kafka_topics.create:
            names = [
                self.topics.telemetry_raw,
                self.topics.telemetry_normalized,
                self.topics.telemetry_dlq,
            ]
            topics = cfg.kafka_topics
            await retry(
                lambda: ensure_topics(
                    cfg.kafka, names, topics.partitions, topics.replication_factor
                ),
                "Kafka topic setup",
            )
        await self._sink.open()
        cleanup.push_async_callback(self._sink.close)
        if cfg.writer.create_database:
            await retry(self._sink.ensure_database, "InfluxDB CREATE DATABASE")

        async def start_producer() -> Producer:
            producer = self._producer_factory()
            await start_client(producer)
            return producer

        self._producer = await retry(start_producer, "Kafka producer start")
        cleanup.push_async_callback(self._producer.stop)

        async def start_consumer() -> Any:
            consumer = AIOKafkaConsumer(
                self.topics.telemetry_raw,
                bootstrap_servers=cfg.kafka.bootstrap,
                client_id=f"{cfg.kafka.client_id}-writer",
                group_id=cfg.writer.group_id,
                enable_auto_commit=False,  # offsets move only after InfluxDB took the points
                auto_offset_reset="earliest",
                max_poll_records=cfg.writer.max_poll_records,
            )
            await start_client(consumer)
            return consumer

        self._consumer = await retry(start_consumer, "Kafka consumer start")
        cleanup.push_async_callback(self._consumer.stop)

    async def _consume_loop(self) -> None:
        backoff = Backoff(self.config.backoff.initial_s, self.config.backoff.max_s)
        while not self._stop.is_set():
            try:
                records = await self._consumer.getmany(
                    timeout_ms=POLL_TIMEOUT_MS, max_records=self.config.writer.max_poll_records
                )
            except KafkaError as exc:
                self._poll_errors.failed(exc)
                if await sleep_unless_stopped(self._stop, backoff.next_delay()):
                    return
                continue
            self._poll_errors.succeeded()
            backoff.reset()
            if not records:
                continue
            try:
                await self._handle_poll(records)
            except StopRequestedError:
                log.info("stopped before the batch in hand was stored; it will be consumed again")
                return

    # --- one poll -------------------------------------------------------------------------
    async def _handle_poll(self, records: dict[TopicPartition, list[Any]]) -> None:
        """Everything one `getmany` returned: store, forward, then commit."""
        offsets = {tp: batch[-1].offset + 1 for tp, batch in records.items() if batch}
        good: list[_Good] = []
        outgoing: list[_Outgoing] = []
        for batch in records.values():
            for record in batch:
                self.stats.messages += 1
                result = decode_raw(record.value)
                if isinstance(result, Rejection):
                    outgoing.append(self._to_dlq(record, result))
                else:
                    good.append(_Good(record, result))
        refused = await self._write(good)
        for item, rejection in refused:
            outgoing.append(self._to_dlq(item.record, rejection))
        if refused:
            refused_ids = {id(item) for item, _ in refused}
            good = [item for item in good if id(item) not in refused_ids]
        outgoing += [self._to_normalized(item) for item in good]
        await self._produce(outgoing)
        self.stats.batches += len(good)
        self.stats.written_points += sum(len(item.decoded.lines) for item in good)
        for out in outgoing:
            if out.dlq_reason is not None:
                self.stats.dlq += 1
                by_reason = self.stats.dlq_by_reason
                by_reason[out.dlq_reason] = by_reason.get(out.dlq_reason, 0) + 1
        await self._commit(offsets)

    def _to_dlq(self, record: Any, rejection: Rejection) -> _Outgoing:
        source = kafka_source(record.topic, record.partition, record.offset)
        self._rejections.rejected(rejection, source)
        headers = dlq_headers(list(record.headers or ()), rejection, source)
        value = record.value if record.value is not None else b""
        return _Outgoing(self.topics.telemetry_dlq, record.key, value, headers, rejection.reason)

    def _to_normalized(self, item: _Good) -> _Outgoing:
        key = item.record.key
        if not key:
            asset = item.decoded.batch.readings[0].asset
            key = f"{asset.plant}/{asset.machine}".encode()
        headers = list(item.record.headers or ())
        return _Outgoing(self.topics.telemetry_normalized, key, encode(item.decoded.batch), headers)

    # --- InfluxDB -------------------------------------------------------------------------
    def _chunks(self, good: Sequence[_Good]) -> Iterator[list[_Good]]:
        limit = self.config.writer.max_batch_readings
        chunk: list[_Good] = []
        size = 0
        for item in good:
            count = len(item.decoded.lines)
            if chunk and size + count > limit:
                yield chunk
                chunk, size = [], 0
            chunk.append(item)
            size += count
        if chunk:
            yield chunk

    async def _write(self, good: Sequence[_Good]) -> list[tuple[_Good, Rejection]]:
        """Write every good batch; return those InfluxDB refused for good, with the reason."""
        refused: list[tuple[_Good, Rejection]] = []
        for chunk in self._chunks(good):
            try:
                await self._write_lines([line for item in chunk for line in item.decoded.lines])
                continue
            except InfluxRejectedError as exc:
                if len(chunk) == 1:
                    refused.append((chunk[0], Rejection(REASON_INFLUX_REJECTED, str(exc))))
                    continue
            # One bad batch spoils its request: find it by writing batch by batch (points that
            # were fine are simply written again).
            for item in chunk:
                try:
                    await self._write_lines(item.decoded.lines)
                except InfluxRejectedError as exc:
                    refused.append((item, Rejection(REASON_INFLUX_REJECTED, str(exc))))
        return refused

    async def _write_lines(self, lines: Sequence[str]) -> None:
        limit = self.config.writer.max_batch_readings
        for start in range(0, len(lines), limit):
            part = lines[start : start + limit]

            def count_failure() -> None:
                self.stats.influx_failures += 1

            await retry_until_stopped(
                functools.partial(self._sink.write, part),
                stop=self._stop,
                backoff=self._influx_backoff,
                errors=self._influx_errors,
                retry_on=(InfluxUnavailableError,),
                on_retry=count_failure,
            )

    # --- Kafka ----------------------------------------------------------------------------
    async def _produce(self, outgoing: list[_Outgoing]) -> None:
        """Send all, wait for every ack; resend only what failed, until it is all in."""
        assert self._producer is not None
        todo = outgoing
        while todo:
            failed: list[_Outgoing] = []
            last_error: BaseException | None = None
            sent: list[tuple[_Outgoing, Any]] = []
            for out in todo:
                try:
                    future = await self._producer.send(
                        out.topic, value=out.value, key=out.key, headers=out.headers
                    )
                except Exception as exc:  # retried below, whatever it is
                    if self._refused_for_good(out, exc):
                        continue
                    failed.append(out)
                    last_error = exc
                    continue
                sent.append((out, future))
            results = await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
            for (out, _), result in zip(sent, results, strict=True):
                if isinstance(result, BaseException) and not self._refused_for_good(out, result):
                    failed.append(out)
                    last_error = result
            if last_error is None:
                self._produce_errors.succeeded()
                self._kafka_backoff.reset()
                return
            self._produce_errors.failed(last_error)
            if await sleep_unless_stopped(self._stop, self._kafka_backoff.next_delay()):
                raise StopRequestedError("Kafka produce")
            todo = failed

    def _refused_for_good(self, out: _Outgoing, exc: BaseException) -> bool:
        if not isinstance(exc, MessageSizeTooLargeError):
            return False
        self.stats.produce_dropped += 1
        log.error(
            "Kafka refused a message as too large; dropped",
            extra={"topic": out.topic, "bytes": len(out.value)},
        )
        return True

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            # Typically a rebalance took the partitions away: their new owner reads these
            # messages again and rewrites the same points, which changes nothing.
            log.warning("offset commit failed; the batch will be processed again: %s", exc)
            return
        self.stats.commits += 1
        for tp, offset in offsets.items():
            self.stats.committed[(tp.topic, tp.partition)] = offset
