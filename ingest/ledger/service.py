"""The completeness ledger as a service inside each writer process.

Why a topic of its own: raw data is keyed plant/machine, so one gateway's batches spread over
several partitions and, with several writers, over several processes; none of them sees all of
a gateway's sequence numbers. The writer therefore publishes one tiny record per batch to
telemetry.sequences keyed plant/gateway_id, and the ledger consumes that topic in its own
consumer group: Kafka gives each gateway exactly one owner, whatever the number of writers.

State survives restarts and rebalances through the compacted topic ingest.ledger: at each flush
the owner writes each changed gateway's whole state there, tagged with the telemetry.sequences
partition it came from and sent to ledger partition (that number mod the ledger's partition
count). A new owner reads those partitions back before consuming. Each snapshot holds the offset
of the last record it applied, so a replay after a crash skips what the snapshot already counts.
Flush order: completeness events (at least once), snapshots, figures to InfluxDB, then the
offset commit (which only shortens the next replay).

aiokafka runs the rebalance callbacks in its coordinator task and lets `getmany` return records
of a newly assigned partition as soon as the assignment is known, before `on_partitions_assigned`
has finished: records fetched while snapshots load would be applied to an empty ledger that the
loaded snapshot then replaces (a gap that never closes). So records wait until the take-over is
done, and applying, flushing and handing over never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from ingest.config import IngestConfig
from ingest.influx import InfluxRejectedError, InfluxSink, InfluxUnavailableError
from ingest.ledger.state import GatewayLedger, SeqRecord
from ingest.line_protocol import format_line
from plantmesh.contracts import encode
from plantmesh.kafka.assignment_gate import AssignmentGate
from plantmesh.kafka.clients import Producer, make_consumer, start_client
from plantmesh.resilience import (
    Backoff,
    ErrorLog,
    StopRequestedError,
    retry_until_stopped,
    sleep_unless_stopped,
)

log = logging.getLogger(__name__)

MEASUREMENT = "completeness"
POLL_TIMEOUT_MS = 250
INFLUX_INT_MAX = 2**63 - 1
"""InfluxDB's integers are signed 64-bit: a figure beyond (many sessions near SEQ_MAX) would make
it refuse the whole write, so figures saturate there."""


def figures_line(ledger: GatewayLedger, ts_ns: int) -> str:
    f = ledger.figures()
    counts = {
        "batches_expected": f.expected,
        "batches_received": f.received,
        "batches_missing": f.missing,
        "duplicates": f.duplicates,
        "conflicts": f.conflicts,
        "readings_received": f.readings,
        "open_gaps": f.open_gaps,
    }
    fields: dict[str, int | float] = {k: min(v, INFLUX_INT_MAX) for k, v in counts.items()}
    fields["readings_missing_estimate"] = float(f.readings_missing_estimate)
    return format_line(
        MEASUREMENT, {"plant": ledger.plant, "gateway": ledger.gateway_id}, fields, ts_ns
    )


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: LedgerService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.service.hand_over(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self.service.take_over(list(assigned))


class LedgerService:
    """Owns the gateways of the telemetry.sequences partitions Kafka assigns this writer."""

    def __init__(
        self,
        config: IngestConfig,
        producer: Producer,
        sink: InfluxSink,
        stop: asyncio.Event,
    ) -> None:
        self.config = config
        self.settings = config.writer.completeness
        self.topics = config.topics
        self._producer = producer
        self._sink = sink
        self._stop = stop
        self._consumer: Any = None
        self.gateways: dict[bytes, GatewayLedger] = {}
        """The gateways this ledger owns; their figures are read at each metrics scrape."""
        self._partition_of: dict[bytes, int] = {}
        self._dirty: set[bytes] = set()
        self._offsets: dict[TopicPartition, int] = {}
        self._ledger_partitions = 1
        self._backoff = Backoff(config.backoff.initial_s, config.backoff.max_s)
        self._errors = ErrorLog(log, "completeness ledger flush")
        self._bad_records = ErrorLog(log, "completeness ledger record")
        self.flushes = 0
        self.ready = asyncio.Event()
        self._lock = asyncio.Lock()
        """Held to apply records, flush, hand over and take over: one at a time."""
        self._gate = AssignmentGate(stop)
        """Closed from a revocation until the next assignment's snapshots are in."""
        self.failed: BaseException | None = None
        """A take-over that failed for another reason than Kafka (aiokafka would only log it):
        `run()` raises it rather than count on state it does not have."""

    async def start(self) -> None:
        cfg = self.config
        consumer = make_consumer(cfg.kafka, "ledger", group_id=f"{cfg.writer.group_id}-ledger")
        await start_client(consumer)
        # Snapshots go to ledger partition (sequences partition mod this count), whatever the
        # two topics' partition counts are.
        self._ledger_partitions = len(
            await self._producer.partitions_for(self.topics.ingest_ledger)
        )
        consumer.subscribe([self.topics.telemetry_sequences], listener=_Rebalance(self))
        self._consumer = consumer

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def run(self) -> None:
        last_flush = time.monotonic()
        while not self._stop.is_set():
            try:
                records = await self._consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
            except KafkaError as exc:
                self._errors.failed(exc)
                if await sleep_unless_stopped(self._stop, self._backoff.next_delay()):
                    break
                continue
            self.ready.set()
            if not await self._gate.wait():
                break
            if self.failed is not None:
                raise self.failed
            async with self._lock:
                now = time.time()
                for tp, batch in records.items():
                    for record in batch:
                        self._apply(tp, record, now)
                    self._offsets[tp] = batch[-1].offset + 1
                if time.monotonic() - last_flush >= self.settings.flush_interval_s:
                    with contextlib.suppress(StopRequestedError):
                        await self.flush()
                    last_flush = time.monotonic()
        # Stopping: one last flush, without retrying (the snapshot and a replay cover the rest).
        with contextlib.suppress(StopRequestedError, KafkaError, InfluxUnavailableError):
            async with self._lock:
                await self.flush(retry=False)

    def _apply(self, tp: TopicPartition, record: Any, now: float) -> None:
        try:
            self._apply_record(tp, record, now)
        except Exception as exc:  # one record must never stop the ledger (nor its writer)
            self._bad_records.once(
                type(exc).__name__,
                "ignoring a telemetry.sequences record at %s/%s that could not be applied: %r",
                tp.partition,
                record.offset,
                exc,
            )

    def _apply_record(self, tp: TopicPartition, record: Any, now: float) -> None:
        seq = SeqRecord.from_bytes(record.value)
        key = seq.key
        ledger = self.gateways.get(key)
        if ledger is None:
            ledger = self.gateways[key] = GatewayLedger(seq.plant, seq.gateway_id)
        if record.offset <= ledger.applied and self._partition_of.get(key) == tp.partition:
            return  # the snapshot already counts it
        self._partition_of[key] = tp.partition
        ledger.add(seq, now)
        ledger.applied = record.offset
        self._dirty.add(key)

    # --- flushing -------------------------------------------------------------------------
    async def flush(self, *, retry: bool = True, only: set[int] | None = None) -> None:
        now = time.time()
        for key, ledger in self.gateways.items():
            if only is not None and self._partition_of.get(key) not in only:
                continue
            before = (len(ledger.pending), len(ledger.sessions))
            ledger.check(now, self.settings.gap_alert_after_s, self.settings.forget_after_s)
            if (len(ledger.pending), len(ledger.sessions)) != before:
                self._dirty.add(key)
        dirty = [k for k in self._dirty if only is None or self._partition_of.get(k) in only]
        if not dirty:
            await self._commit(only)
            return
        ledgers = [self.gateways[k] for k in dirty]
        events = [(ledger.key, encode(event)) for ledger in ledgers for event in ledger.pending]
        snapshots = []
        for ledger in ledgers:
            ledger.partition = self._partition_of[ledger.key]
            where = ledger.partition % self._ledger_partitions
            snapshots.append((ledger.key, ledger.to_bytes(), where))
        ts_ns = int(now) * 1_000_000_000
        lines = [figures_line(ledger, ts_ns) for ledger in ledgers]

        async def publish() -> None:
            await self._send_all(
                [(self.topics.telemetry_completeness, k, v, None) for k, v in events]
            )
            await self._send_all([(self.topics.ingest_ledger, k, v, p) for k, v, p in snapshots])
            try:
                await self._sink.write(lines)
            except InfluxRejectedError as exc:  # retrying cannot help; the snapshot keeps all
                self._bad_records.once("influx", "InfluxDB refused completeness figures: %s", exc)

        if retry:
            await retry_until_stopped(
                publish,
                stop=self._stop,
                backoff=self._backoff,
                errors=self._errors,
                retry_on=(KafkaError, InfluxUnavailableError),
            )
        else:
            await publish()
        for ledger in ledgers:
            ledger.pending.clear()
        self._dirty.difference_update(dirty)
        self.flushes += 1
        await self._commit(only)

    async def _send_all(self, messages: list[tuple[str, bytes, bytes, int | None]]) -> None:
        futures = [
            await self._producer.send(topic, value=value, key=key, partition=partition)
            for topic, key, value, partition in messages
        ]
        await asyncio.gather(*futures)

    async def _commit(self, only: set[int] | None) -> None:
        offsets = {
            tp: offset
            for tp, offset in self._offsets.items()
            if only is None or tp.partition in only
        }
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            log.info("ledger offset commit failed (the snapshot covers it): %s", exc)
            return
        for tp in offsets:
            self._offsets.pop(tp, None)

    # --- ownership ------------------------------------------------------------------------
    async def hand_over(self, revoked: list[TopicPartition]) -> None:
        """Before another writer owns these gateways: publish their state, then forget it."""
        self._gate.close()  # before any await: no record is applied until the take-over
        partitions = {tp.partition for tp in revoked}
        async with self._lock:
            with contextlib.suppress(StopRequestedError, KafkaError, InfluxUnavailableError):
                await self.flush(retry=False, only=partitions)
            for key in [k for k, p in self._partition_of.items() if p in partitions]:
                self.gateways.pop(key, None)
                self._partition_of.pop(key, None)
                self._dirty.discard(key)
            for tp in [tp for tp in self._offsets if tp.partition in partitions]:
                del self._offsets[tp]  # not ours to commit any more; the next owner replays

    async def take_over(self, assigned: list[TopicPartition]) -> None:
        """Read the snapshots of the gateways these partitions carry; only then may records of
        any partition be applied."""
        try:
            async with self._lock:
                await self._take_over(assigned)
        except StopRequestedError:
            pass  # stopping while snapshots load: the next owner loads them
        except Exception as exc:
            self.failed = exc
        finally:
            self._gate.open()

    async def _take_over(self, assigned: list[TopicPartition]) -> None:
        owned = {tp.partition for tp in assigned}
        partitions = [
            TopicPartition(self.topics.ingest_ledger, p)
            for p in sorted({p % self._ledger_partitions for p in owned})
        ]
        if not partitions:
            return
        loaded = await retry_until_stopped(
            functools.partial(self._read_snapshots, partitions, owned),
            stop=self._stop,
            backoff=Backoff(self.config.backoff.initial_s, self.config.backoff.max_s),
            errors=ErrorLog(log, "ledger snapshot load"),
            retry_on=(KafkaError,),
        )
        for key, ledger in loaded.items():
            self.gateways[key] = ledger
            self._partition_of[key] = ledger.partition
        log.info(
            "completeness ledger owns %d partitions, %d gateways restored",
            len(partitions),
            len(loaded),
        )

    async def _read_snapshots(
        self, partitions: list[TopicPartition], owned: set[int]
    ) -> dict[bytes, GatewayLedger]:
        """The latest snapshot of every gateway of the `owned` telemetry.sequences partitions."""
        reader = make_consumer(self.config.kafka, "ledger-load", group_id=None)
        await start_client(reader)
        found: dict[bytes, GatewayLedger] = {}
        try:
            reader.assign(partitions)
            await reader.seek_to_beginning(*partitions)
            ends = await reader.end_offsets(partitions)
            left = {tp for tp in partitions if ends[tp] > await reader.position(tp)}
            while left:
                for tp, batch in (await reader.getmany(*left, timeout_ms=500)).items():
                    for record in batch:
                        if record.key is not None and record.value is not None:
                            try:
                                ledger = GatewayLedger.from_bytes(record.value)
                            except (ValueError, KeyError, TypeError):
                                continue
                            if ledger.partition in owned:
                                found[record.key] = ledger
                            else:
                                found.pop(record.key, None)  # moved to another partition
                    if batch and batch[-1].offset + 1 >= ends[tp]:
                        left.discard(tp)
        finally:
            await reader.stop()
        return found
