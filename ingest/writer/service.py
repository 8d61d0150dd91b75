"""The writer: Kafka telemetry.raw -> InfluxDB, telemetry.normalized and telemetry.dlq.

Per poll: check every message reading by reading (ingest.checks.checker) and normalize it through
the asset registry; bad messages and bad readings go to the DLQ, each on its own with the reason;
good readings are written to InfluxDB (the same points again on a replay, so at-least-once leaves
no duplicates), then forwarded to telemetry.normalized, and each batch's sequence number goes to
telemetry.sequences for the completeness ledger. Offsets are committed only when InfluxDB and
Kafka have acknowledged everything of the poll.

Backpressure: while InfluxDB is slow or down the writer retries the same points with capped
backoff and fetches nothing new; once a write has taken `pause_after_s` it pauses its partitions
and keeps polling (which fetches nothing) so it stays in the consumer group, then resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.structs import TopicPartition

from ingest.checks.checker import Checked, Limits, Validator
from ingest.config import IngestConfig
from ingest.influx import InfluxRejectedError, InfluxSink, InfluxUnavailableError
from ingest.ledger.service import LedgerService
from ingest.ledger.state import SeqRecord
from ingest.line_protocol import timestamp_ns
from ingest.metrics import IngestMetrics
from ingest.normalize.registry import AssetRegistry
from plantmesh.dead_letters import (
    OVERSIZED_KEEP_BYTES,
    Headers,
    Rejection,
    RejectionLog,
    dlq_headers,
    kafka_source,
)
from plantmesh.kafka.admin import ensure_compacted_topic, ensure_topics
from plantmesh.kafka.clients import Producer, ProducerFactory, make_producer, start_client
from plantmesh.resilience import (
    Backoff,
    ErrorLog,
    StopRequestedError,
    retry_until_stopped,
    sleep_unless_stopped,
)
from plantmesh.topics import HEADER_DLQ_READING_INDEX, HEADER_REGISTRY_VERSION, DlqReason

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 250  # also how quickly an idle writer notices stop()
UNKNOWN_PLANT = "unknown"
WRITES_IN_FLIGHT = 2
"""InfluxDB write requests at a time, over all stores: InfluxDB works on one while the next
travels (more only queue up inside InfluxDB)."""
STORES_IN_FLIGHT = 2
"""Polls being stored at a time: one forwarding and committing while the next one writes."""
PREPARE_SLICE = 25
"""Messages checked between yields to the loop: a whole poll takes 100+ ms of CPU, and InfluxDB
would sit idle that long once its write returned, its next request not yet sent."""
FETCH_PARTITION_BYTES = 8 << 20
T = TypeVar("T")


@dataclass
class WriterStats:
    """Counters, read by tests and (later) metrics."""

    messages: int = 0
    """Raw messages consumed."""
    batches: int = 0
    """Reading batches written to InfluxDB and forwarded to telemetry.normalized."""
    written_points: int = 0
    dlq: int = 0
    """DLQ entries: whole messages and single readings."""
    dlq_by_reason: dict[str, int] = field(default_factory=dict)
    pauses: int = 0
    """Times the partitions were paused because InfluxDB was slow or down."""
    influx_failures: int = 0
    """Write attempts InfluxDB did not take (each was retried)."""
    produce_dropped: int = 0
    """DLQ entries Kafka refused for good (too large); logged as errors. Other messages Kafka
    refuses as too large go to the DLQ (reason kafka_rejected), their first 64 KiB."""
    commits: int = 0
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    """(topic, partition) -> the next offset this writer committed."""


@dataclass(frozen=True)
class _Good:
    record: Any  # aiokafka ConsumerRecord
    checked: Checked

    @property
    def lines(self) -> list[str]:
        return self.checked.lines


@dataclass
class _Prepared:
    offsets: dict[TopicPartition, int]
    good: list[_Good] = field(default_factory=list)
    outgoing: list[_Outgoing] = field(default_factory=list)
    sequences: list[_Outgoing] = field(default_factory=list)


@dataclass(frozen=True)
class _Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    dlq_reason: str | None = None
    source: str | None = None
    """The raw message it comes from (`topic/partition/offset`), for a DLQ entry."""
    alone: bool = False
    """Send in a record batch of its own: Kafka refused a batch it was in as too large."""


def _failed(exc: BaseException) -> asyncio.Future[None]:
    """A send that failed before it was sent, as a future like the others."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future


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
        self._sink = InfluxSink(config.influxdb, gzip=config.writer.gzip)
        self.metrics = IngestMetrics("writer")
        path = config.writer.registry
        self.registry = AssetRegistry.load(path) if path is not None else None
        limits = config.writer.validation
        self._validator = Validator(
            Limits(limits.max_message_bytes, limits.max_future_s, limits.max_past_s),
            self.registry,
        )
        self.ledger: LedgerService | None = None
        self._fetching = asyncio.Lock()  # one getmany at a time (the loop, or a paused store)
        self._write_slots = asyncio.Semaphore(WRITES_IN_FLIGHT)
        self._pausing = 0  # stores waiting on a slow InfluxDB with the partitions paused
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
                if self.ledger is not None:
                    tasks.create_task(self.ledger.run(), name="ingest-writer-ledger")
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

        ledger_on = cfg.writer.completeness.enabled
        if cfg.kafka_topics.create:
            names = [
                self.topics.telemetry_raw,
                self.topics.telemetry_normalized,
                self.topics.telemetry_dlq,
            ]
            if ledger_on:
                names += [self.topics.telemetry_sequences, self.topics.telemetry_completeness]
            topics = cfg.kafka_topics
            await retry(
                lambda: ensure_topics(
                    cfg.kafka, names, topics.partitions, topics.replication_factor
                ),
                "Kafka topic setup",
            )
            if ledger_on:
                await retry(
                    lambda: ensure_compacted_topic(
                        cfg.kafka,
                        self.topics.ingest_ledger,
                        topics.partitions,
                        topics.replication_factor,
                    ),
                    "Kafka ledger topic setup",
                )
        self.metrics.serve(cfg.writer.metrics)
        cleanup.callback(self.metrics.close)
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
                # A poll of max_poll_records reading batches is several MB; at the default 1 MiB
                # per partition a fetch brings a fraction of it and the writer waits for more.
                max_partition_fetch_bytes=FETCH_PARTITION_BYTES,
            )
            await start_client(consumer)
            return consumer

        if ledger_on:
            ledger = LedgerService(cfg, self._producer, self._sink, self.metrics, self._stop)
            await retry(ledger.start, "Kafka ledger consumer start")
            cleanup.push_async_callback(ledger.close)
            self.ledger = ledger
        self._consumer = await retry(start_consumer, "Kafka consumer start")
        cleanup.push_async_callback(self._consumer.stop)

    async def _consume_loop(self) -> None:
        """Fetch and check poll N+2 while poll N+1 is written to InfluxDB and poll N forwarded
        and committed: the checks are CPU work of this process, a store mostly waits for
        InfluxDB and Kafka, and InfluxDB stays busy only when the next write is already on its
        way. Each store forwards and commits only after the one before it, so commits stay in
        order; at most STORES_IN_FLIGHT + 1 polls are in memory."""
        backoff = Backoff(self.config.backoff.initial_s, self.config.backoff.max_s)
        stores: list[asyncio.Task[None]] = []
        try:
            while not self._stop.is_set():
                try:
                    async with self._fetching:
                        records = await self._consumer.getmany(
                            timeout_ms=POLL_TIMEOUT_MS,
                            max_records=self.config.writer.max_poll_records,
                        )
                except KafkaError as exc:
                    self._poll_errors.failed(exc)
                    if await sleep_unless_stopped(self._stop, backoff.next_delay()):
                        break
                    continue
                self._poll_errors.succeeded()
                backoff.reset()
                if not records:
                    continue
                prepared = await self._prepare(records)
                # Stores finish in order (each waits for the one before): reap from the front.
                while stores and (stores[0].done() or len(stores) >= STORES_IN_FLIGHT):
                    await stores.pop(0)
                before = stores[-1] if stores else None
                stores.append(
                    asyncio.create_task(self._store(prepared, before), name="ingest-writer-store")
                )
                await asyncio.sleep(0)  # let the store send its first write before more checks
            while stores:
                await stores.pop(0)
        except StopRequestedError:
            log.info("stopped before the batch in hand was stored; it will be consumed again")
        finally:
            for task in stores:
                task.cancel()
            await asyncio.gather(*stores, return_exceptions=True)

    # --- one poll -------------------------------------------------------------------------
    async def _prepare(self, records: dict[TopicPartition, list[Any]]) -> _Prepared:
        """Check and normalize everything one `getmany` returned, yielding to the loop now and
        then so that the stores in flight keep InfluxDB busy."""
        prepared = _Prepared({tp: batch[-1].offset + 1 for tp, batch in records.items() if batch})
        good, outgoing, sequences = prepared.good, prepared.outgoing, prepared.sequences
        now = datetime.now(UTC)
        now_ns = timestamp_ns(now)
        check = self._validator.check
        slice_left = PREPARE_SLICE
        for batch in records.values():
            for record in batch:
                slice_left -= 1
                if not slice_left:
                    slice_left = PREPARE_SLICE
                    await asyncio.sleep(0)
                result = check(record.value, now, now_ns)
                if isinstance(result, Rejection):
                    outgoing.append(self._to_dlq(record, result))
                    continue
                for bad in result.bad:
                    outgoing.append(self._to_dlq(record, bad.rejection, bad.value, bad.index))
                if self.ledger is not None:
                    sequences.append(self._sequence(record, result))
                if result.lines:  # one line per good reading
                    good.append(_Good(record, result))
        taken = sum(len(batch) for batch in records.values())
        self.stats.messages += taken
        self.metrics.messages.inc(taken)
        return prepared

    async def _store(self, prepared: _Prepared, before: asyncio.Task[None] | None) -> None:
        """Write to InfluxDB; once the store `before` this one is done, forward, then commit."""
        good, outgoing = prepared.good, prepared.outgoing
        refused = await self._backpressured(self._write(good))
        if before is not None:
            await before  # its failure is this one's too: nothing after it may commit
        for item, rejection in refused:
            outgoing.append(self._to_dlq(item.record, rejection))
        if refused:
            refused_ids = {id(item) for item, _ in refused}
            good = [item for item in good if id(item) not in refused_ids]
        outgoing += [self._to_normalized(item) for item in good]
        outgoing += prepared.sequences
        outgoing += await self._produce(outgoing)
        points = sum(len(item.lines) for item in good)
        self.stats.batches += len(good)
        self.stats.written_points += points
        self.metrics.readings_written.inc(points)
        self.metrics.forwarded.inc(len(good))
        for out in outgoing:
            if out.dlq_reason is not None:
                self.stats.dlq += 1
                by_reason = self.stats.dlq_by_reason
                by_reason[out.dlq_reason] = by_reason.get(out.dlq_reason, 0) + 1
                self.metrics.rejected(out.dlq_reason)
        await self._commit(prepared.offsets)

    def _to_dlq(
        self,
        record: Any,
        rejection: Rejection,
        value: bytes | None = None,
        reading_index: int | None = None,
    ) -> _Outgoing:
        source = kafka_source(record.topic, record.partition, record.offset)
        self._rejections.rejected(rejection, source)
        headers = dlq_headers(list(record.headers or ()), rejection, source)
        if reading_index is not None:
            headers.append((HEADER_DLQ_READING_INDEX, str(reading_index).encode()))
        if value is None:
            value = record.value if record.value is not None else b""
        return _Outgoing(self.topics.telemetry_dlq, record.key, value, headers, rejection.reason)

    def _to_normalized(self, item: _Good) -> _Outgoing:
        checked = item.checked
        key = item.record.key
        if not key:
            asset = checked.readings[0]["asset"]
            key = f"{asset['plant']}/{asset['machine']}".encode()
        headers = list(item.record.headers or ())
        if self.registry is not None:
            headers.append((HEADER_REGISTRY_VERSION, self.registry.version.encode()))
        # Unchanged batches travel as they came: re-encoding costs more than validating.
        value = checked.to_json() if checked.changed else item.record.value
        record = item.record
        source = kafka_source(record.topic, record.partition, record.offset)
        return _Outgoing(self.topics.telemetry_normalized, key, value, headers, source=source)

    def _sequence(self, record: Any, checked: Checked) -> _Outgoing:
        plant = checked.plant
        if plant is None:
            key = (record.key or b"").decode(errors="replace")
            plant = key.split("/", 1)[0] if key and "/" in key else UNKNOWN_PLANT
        seq = SeqRecord(
            plant, checked.gateway_id, checked.session_id, checked.seq, checked.received
        )
        return _Outgoing(self.topics.telemetry_sequences, seq.key, seq.to_bytes(), [])

    async def _backpressured(self, operation: Coroutine[Any, Any, T]) -> T:
        """Await `operation` (a write that retries until InfluxDB takes it). If it takes longer
        than `pause_after_s`, pause the partitions and keep polling meanwhile: polls fetch
        nothing, memory stays flat, and the group does not evict a writer that seems stuck."""
        task = asyncio.create_task(operation, name="ingest-writer-influx-write")
        try:
            done, _ = await asyncio.wait({task}, timeout=self.config.writer.pause_after_s)
            if done:
                return task.result()
            consumer = self._consumer
            self._pausing += 1
            if self._pausing == 1:
                consumer.pause(*consumer.assignment())
                self.stats.pauses += 1
                self.metrics.paused.set(1)
                log.warning("InfluxDB is slow or down: partitions paused until the write succeeds")
            try:
                while not task.done():
                    async with self._fetching:
                        polled = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
                    for tp, batch in polled.items():  # newly assigned during the pause
                        consumer.seek(tp, batch[0].offset)
                        consumer.pause(tp)
            finally:
                self._pausing -= 1
                if self._pausing == 0:
                    consumer.resume(*consumer.assignment())
                    self.metrics.paused.set(0)
                    log.info("InfluxDB took the write: partitions resumed")
            return task.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopRequestedError):
                    await task

    # --- InfluxDB -------------------------------------------------------------------------
    def _chunks(self, good: Sequence[_Good]) -> Iterator[list[_Good]]:
        limit = self.config.writer.max_batch_readings
        chunk: list[_Good] = []
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

    async def _write(self, good: Sequence[_Good]) -> list[tuple[_Good, Rejection]]:
        """Write every good batch, WRITES_IN_FLIGHT requests at a time (InfluxDB works on one
        while the next travels); return those InfluxDB refused for good, with the reason."""
        slots = self._write_slots

        async def write(chunk: list[_Good]) -> list[tuple[_Good, Rejection]]:
            async with slots:
                return await self._write_chunk(chunk)

        results = await asyncio.gather(*(write(chunk) for chunk in self._chunks(good)))
        return [item for refused in results for item in refused]

    async def _write_chunk(self, chunk: list[_Good]) -> list[tuple[_Good, Rejection]]:
        try:
            await self._write_lines([line for item in chunk for line in item.lines])
            return []
        except InfluxRejectedError as exc:
            if len(chunk) == 1:
                return [(chunk[0], Rejection(DlqReason.INFLUX_REJECTED, str(exc)))]
        # One bad batch spoils its request: find it by writing batch by batch (points that
        # were fine are simply written again).
        refused: list[tuple[_Good, Rejection]] = []
        for item in chunk:
            try:
                await self._write_lines(item.lines)
            except InfluxRejectedError as exc:
                refused.append((item, Rejection(DlqReason.INFLUX_REJECTED, str(exc))))
        return refused

    async def _write_lines(self, lines: Sequence[str]) -> None:
        limit = self.config.writer.max_batch_readings
        for start in range(0, len(lines), limit):
            part = lines[start : start + limit]

            def count_failure() -> None:
                self.stats.influx_failures += 1
                self.metrics.influx_failures.inc()

            await retry_until_stopped(
                functools.partial(self._sink.write, part),
                stop=self._stop,
                backoff=self._influx_backoff,
                errors=self._influx_errors,
                retry_on=(InfluxUnavailableError,),
                on_retry=count_failure,
            )

    # --- Kafka ----------------------------------------------------------------------------
    async def _produce(self, outgoing: list[_Outgoing]) -> list[_Outgoing]:
        """Send all, wait for every ack; resend only what failed, until it is all in. Returns
        the DLQ entries made for messages Kafka refused as too large (sent as well)."""
        assert self._producer is not None
        todo = outgoing
        rerouted: list[_Outgoing] = []
        while todo:
            failed: list[_Outgoing] = []
            last_error: BaseException | None = None
            sent: list[tuple[_Outgoing, Any]] = []
            for out in todo:
                try:
                    future = await self._producer.send(
                        out.topic, value=out.value, key=out.key, headers=out.headers
                    )
                    if out.alone:  # nothing else joins its record batch while it is out
                        with contextlib.suppress(Exception):  # the gather below reports it
                            await future
                except Exception as exc:  # retried below, whatever it is
                    future = _failed(exc)
                sent.append((out, future))
            results = await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
            for (out, _), result in zip(sent, results, strict=True):
                if not isinstance(result, BaseException):
                    continue
                if isinstance(result, MessageSizeTooLargeError) and not out.alone:
                    failed.append(replace(out, alone=True))  # it, or another of its batch?
                    continue
                if isinstance(result, MessageSizeTooLargeError):
                    dlq = self._too_large(out, result)
                    if dlq is not None:
                        rerouted.append(dlq)
                        failed.append(dlq)  # sent in the next round, without waiting
                    continue
                failed.append(out)
                last_error = result
            if last_error is None:
                self._produce_errors.succeeded()
                self._kafka_backoff.reset()
            else:
                self._produce_errors.failed(last_error)
                if await sleep_unless_stopped(self._stop, self._kafka_backoff.next_delay()):
                    raise StopRequestedError("Kafka produce")
            todo = failed
        return rerouted

    def _too_large(self, out: _Outgoing, exc: BaseException) -> _Outgoing | None:
        """A DLQ entry for a message Kafka will never take; None when it was one already."""
        if out.topic == self.topics.telemetry_dlq:
            self.stats.produce_dropped += 1
            log.error(
                "Kafka refused a DLQ entry as too large; dropped",
                extra={"topic": out.topic, "bytes": len(out.value)},
            )
            return None
        rejection = Rejection(DlqReason.KAFKA_REJECTED, f"{out.topic}: {type(exc).__name__}: {exc}")
        source = out.source or out.topic
        self._rejections.rejected(rejection, source)
        headers = dlq_headers(out.headers, rejection, source)
        value = out.value[:OVERSIZED_KEEP_BYTES]
        return _Outgoing(
            self.topics.telemetry_dlq, out.key, value, headers, rejection.reason, source
        )

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
