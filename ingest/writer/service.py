"""The writer: Kafka telemetry.raw -> InfluxDB, telemetry.normalized and telemetry.dlq.

Per poll (ingest.writer.poll): every message is checked reading by reading and normalized through
the asset registry; bad messages and bad readings go to the DLQ. Good readings are written to
InfluxDB (ingest.writer.store; the same points again on a replay, so at-least-once leaves no
duplicates), then forwarded to telemetry.normalized, and each batch's sequence number goes to
telemetry.sequences for the completeness ledger (ingest.writer.produce). Offsets are committed
only when InfluxDB and Kafka have acknowledged everything of the poll.

The sinks start before the source (InfluxDB and the producer before the consumer), so nothing
is fetched that could not be stored. While InfluxDB is slow or down the writer retries the same
points and fetches nothing new, its partitions paused once a write has taken `pause_after_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition
from prometheus_client.core import Metric

from ingest.config import IngestConfig
from ingest.influx import InfluxSink
from ingest.ledger.service import LedgerService
from ingest.writer.metrics import families
from ingest.writer.poll import Good, Poll, Preparer, internal_error
from ingest.writer.produce import Sender
from ingest.writer.recall import Recall, subscribe
from ingest.writer.stats import WriterStats
from ingest.writer.store import POLL_TIMEOUT_MS, Backpressure, InfluxStore
from plantmesh.dead_letters import RejectionLog
from plantmesh.kafka.admin import ensure_compacted_topic, ensure_topics
from plantmesh.kafka.clients import (
    Producer,
    ProducerFactory,
    make_consumer,
    make_producer,
    start_client,
)
from plantmesh.kafka.refusals import Outgoing
from plantmesh.metrics import MetricsServer
from plantmesh.resilience import (
    Backoff,
    ErrorLog,
    StopRequestedError,
    retry_until_stopped,
    sleep_unless_stopped,
)

log = logging.getLogger(__name__)

STORES_IN_FLIGHT = 2
"""Polls being stored at a time: one forwarding and committing while the next one writes."""
FETCH_PARTITION_BYTES = 8 << 20
T = TypeVar("T")


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
        self.ledger: LedgerService | None = None
        self.metrics_server: MetricsServer | None = None
        self._stop = asyncio.Event()
        self._producer_factory = producer_factory or (lambda: make_producer(config.kafka, "writer"))
        self._consumer: Any = None
        self._sink = InfluxSink(config.influxdb, gzip=config.writer.gzip)
        self._rejections = RejectionLog(log)
        self._preparer = Preparer(config, self._rejections)
        self.recall = Recall(config, self._preparer, self._stop)
        self._influx = InfluxStore(config, self._sink, self.stats, self._stop)
        self._backpressure = Backpressure(config.writer.pause_after_s, self.stats)
        self._sender: Sender | None = None
        self._poll_errors = ErrorLog(log, "Kafka fetch")
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
        if cfg.kafka_topics.create:
            await self._create_topics()
        self._serve_metrics(cleanup)
        await self._sink.open()
        cleanup.push_async_callback(self._sink.close)
        if cfg.writer.create_database:
            await self._retry(self._sink.ensure_database, "InfluxDB CREATE DATABASE")
        producer = await self._retry(self._start_producer, "Kafka producer start")
        cleanup.push_async_callback(producer.stop)
        backoff = Backoff(cfg.backoff.initial_s, cfg.backoff.max_s)
        self._sender = Sender(
            producer, self.topics.telemetry_dlq, backoff, self._rejections, self.stats, self._stop
        )
        if cfg.writer.completeness.enabled:
            ledger = LedgerService(cfg, producer, self._sink, self._stop)
            await self._retry(ledger.start, "Kafka ledger consumer start")
            cleanup.push_async_callback(ledger.close)
            self.ledger = ledger
        self._consumer = await self._retry(self._start_consumer, "Kafka consumer start")
        cleanup.push_async_callback(self._consumer.stop)

    async def _retry(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        backoff = Backoff(self.config.backoff.initial_s, self.config.backoff.max_s)
        return await retry_until_stopped(
            operation, stop=self._stop, backoff=backoff, errors=ErrorLog(log, what)
        )

    async def _create_topics(self) -> None:
        cfg, topics = self.config, self.topics
        settings = cfg.kafka_topics
        partitions, replication = settings.partitions, settings.replication_factor
        names = [topics.telemetry_raw, topics.telemetry_normalized, topics.telemetry_dlq]
        ledger_on = cfg.writer.completeness.enabled
        if ledger_on:
            names += [topics.telemetry_sequences, topics.telemetry_completeness]
        await self._retry(
            lambda: ensure_topics(cfg.kafka, names, partitions, replication), "Kafka topic setup"
        )
        if ledger_on:
            await self._retry(
                lambda: ensure_compacted_topic(
                    cfg.kafka, topics.ingest_ledger, partitions, replication
                ),
                "Kafka ledger topic setup",
            )

    def _serve_metrics(self, cleanup: contextlib.AsyncExitStack) -> None:
        address = self.config.writer.metrics.address
        if address is None:
            return
        try:
            server = MetricsServer(self._metric_families, address, asyncio.get_running_loop())
        except OSError as exc:  # e.g. the port is taken: the data matters more than metrics
            log.error("metrics endpoint %s:%d not started: %s", *address, exc)
            return
        self.metrics_server = server
        cleanup.callback(server.close)

    def _metric_families(self) -> Iterator[Metric]:
        gateways = self.ledger.gateways.values() if self.ledger is not None else ()
        return families(self.stats, gateways)

    async def _start_producer(self) -> Producer:
        producer = self._producer_factory()
        await start_client(producer)
        return producer

    async def _start_consumer(self) -> Any:
        cfg = self.config
        consumer = make_consumer(
            cfg.kafka,
            "writer",
            group_id=cfg.writer.group_id,
            max_poll_records=cfg.writer.max_poll_records,
            # A poll of max_poll_records reading batches is several MB; at the default 1 MiB
            # per partition a fetch brings a fraction of it and the writer waits for more.
            max_partition_fetch_bytes=FETCH_PARTITION_BYTES,
        )
        await start_client(consumer)
        # Subscribed with the recall as listener: a partition's committed tail enters the
        # duplicate window before the partition's first fetch.
        subscribe(consumer, self.topics.telemetry_raw, self.recall)
        return consumer

    # --- the pipeline ---------------------------------------------------------------------
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
                    async with self._backpressure.fetching:
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
                if not await self.recall.gate.wait():  # a new partition's tail first
                    break
                poll = await self._preparer.prepare(records)
                self.stats.messages += sum(len(batch) for batch in records.values())
                # Stores finish in order (each waits for the one before): reap from the front.
                while stores and (stores[0].done() or len(stores) >= STORES_IN_FLIGHT):
                    await stores.pop(0)
                before = stores[-1] if stores else None
                stores.append(
                    asyncio.create_task(self._store(poll, before), name="ingest-writer-store")
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

    async def _store(self, poll: Poll, before: asyncio.Task[None] | None) -> None:
        """Write to InfluxDB; once the store `before` this one is done, forward, then commit."""
        assert self._sender is not None  # set at start, before the consumer
        good, outgoing = poll.good, poll.outgoing
        refused = await self._backpressure.wait(self._consumer, self._influx.write(good))
        if before is not None:
            await before  # its failure is this one's too: nothing after it may commit
        for item, rejection in refused:
            outgoing.append(self._preparer.dead_letter(item.record, rejection))
        if refused:
            refused_ids = {id(item) for item, _ in refused}
            good = [item for item in good if id(item) not in refused_ids]
        outgoing += self._normalized(good)
        outgoing += poll.sequences
        outgoing += await self._sender.send(outgoing)
        self._count(good, outgoing)
        await self._commit(poll.offsets)

    def _normalized(self, good: list[Good]) -> list[Outgoing]:
        """The normalized copy of each stored batch; one that cannot be made goes to the DLQ
        (its points are in InfluxDB already) and the rest flow on."""
        preparer, copies = self._preparer, []
        for item in good:
            try:
                copies.append(preparer.normalized(item))
            except Exception as exc:
                copies.append(preparer.dead_letter(item.record, internal_error(exc)))
        return copies

    def _count(self, good: list[Good], outgoing: list[Outgoing]) -> None:
        stats = self.stats
        stats.batches += len(good)
        stats.written_points += sum(len(item.lines) for item in good)
        by_reason = stats.dlq_by_reason
        for out in outgoing:
            if out.rejection is not None:
                stats.dlq += 1
                reason = out.rejection.reason
                by_reason[reason] = by_reason.get(reason, 0) + 1

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
