"""The alerting service: normalized readings from Kafka -> rules -> alert events to the log,
the alert log file and Kafka, committing consumer offsets only once the events are out.

Durable state: one engine per input partition (shards.py), checkpointed with its input offsets
to the compacted topic alerting.state every `checkpoint_interval_s` (in the background), when
Kafka takes its partition away, and at a clean stop (checkpointing.py); a new owner (this process after a crash, or another one
after a rebalance) restores the checkpoint, seeks to its offsets and replays. Events are
published before the checkpoint that covers them, so a crash never loses one; the replay makes
again those published since, and they are skipped (their ids are read back from alerts.events).

Startup order follows the data backwards: topics, then sinks and the state store, then the
consumer (the source); shutdown closes the consumer first and the sinks last.

No poison pill: a message that does not decode, that alerting cannot use, or whose evaluation
raises is skipped, counted by reason (stats.skipped) and logged once per kind, and its offset is
committed with the others (alerting/poison.py says why not to a DLQ). A rule's own exception
skips only that rule for that reading (Engine._failed_once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError

from alerting.catalogue import load_catalogue
from alerting.checkpointing import Checkpointer
from alerting.commands import BaselineCommand, apply, follow
from alerting.config import AlertingConfig
from alerting.engine import Engine
from alerting.inputs import input_topics
from alerting.pipeline import FanOut, Pipeline
from alerting.poison import RefusedError, Skips, internal_error
from alerting.shards import Shards
from alerting.sinks import AlertLogSink, EventSink, KafkaEventSink, LogSink, SinkError
from alerting.state_store import CheckpointTooLargeError, StateStore
from alerting.stats import ServiceStats, report_stats
from alerting.topic_setup import create_topics, input_partitions
from plantmesh.contracts import AlertEvent, DecodeError
from plantmesh.dead_letters import Rejection
from plantmesh.kafka.admin import TopicSetupError
from plantmesh.kafka.assignment_gate import AssignmentGate
from plantmesh.kafka.clients import make_consumer, start_client
from plantmesh.resilience import Backoff, ErrorLog, StopRequestedError, retry_until_stopped
from plantmesh.topics import DlqReason, Topics

log = logging.getLogger(__name__)

T = TypeVar("T")

POLL_TIMEOUT_MS = 200  # also bounds how long stop() takes to be noticed
MAX_POLL_RECORDS = 500


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: AlertingService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.service.gate.close()
        await self.service.hand_over({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        try:
            # Stopping while checkpoints load: nothing is evaluated, the next owner loads them.
            with contextlib.suppress(StopRequestedError):
                await self.service.take_over({tp.partition for tp in assigned})
        finally:
            self.service.gate.open()


class AlertingService:
    """In-process: `task = asyncio.create_task(service.run())`, later `service.stop()` and
    `await task`. `ready` is set once the consumer is subscribed."""

    def __init__(self, config: AlertingConfig, engine: Callable[[], Engine] | None = None) -> None:
        """`engine`: makes one shard's engine (default: from the configuration's rules)."""
        self.config = config
        self.topics = Topics(config.namespace)
        if engine is None:
            catalogue = load_catalogue(config.catalogue)

            def engine() -> Engine:
                return Engine.from_config(config.rules, catalogue, lateness_s=config.lateness_s)

        self.shards = Shards(self.topics, engine)
        self.rule_count = len(engine().rules)
        self.stats = ServiceStats()
        self.ready = asyncio.Event()
        self._stopping = asyncio.Event()
        # Logged once per reason / error type for the life of the service, then only counted.
        self._skips = Skips(log, self.stats.skipped)
        self._commit_errors = ErrorLog(log, "offset commit")
        self.sinks: list[EventSink] = [
            LogSink(),
            AlertLogSink(config.alert_log),
            KafkaEventSink(config.kafka, self.topics.alert_events),
        ]
        self.pipeline = Pipeline([FanOut(self.sinks, self._stopping)])
        self.store = StateStore(config.kafka, self.topics.alerting_state, config.group_id)
        self.checkpoints = Checkpointer(self.store, config.checkpoint_interval_s, self.stats)
        self._consumer: AIOKafkaConsumer | None = None
        # Held while records are evaluated and their events published, and while a partition
        # is handed over or taken over: a shard is never checkpointed half-way through a poll.
        self._lock = asyncio.Lock()
        self.commands_ready = asyncio.Event()  # commands sent from then on will be seen
        # Holds a poll that spans a rebalance until the take-over is done (see _settled).
        self.gate = AssignmentGate(self._stopping)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Until stop(); raises TopicSetupError if the broker refuses to create a topic."""
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._consume(), name="alerting.consume")
                tasks.create_task(self._follow_commands(), name="alerting.commands")
                tasks.create_task(
                    report_stats(self.stats, self.shards, self._stopping), name="alerting.stats"
                )
        except ExceptionGroup as group:
            # One task failed and the group stopped the rest: hand the caller that one error.
            raise group.exceptions[0] from None

    # --- lifecycle --------------------------------------------------------------------------------
    async def _retry(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt` until it works; raise StopRequestedError if stopped before it did."""
        return await retry_until_stopped(
            attempt,
            stop=self._stopping,
            backoff=Backoff(self.config.backoff.initial_s, self.config.backoff.max_s),
            errors=ErrorLog(log, what),
            retry_on=(KafkaError, SinkError, OSError),
        )

    async def _start_consumer(self) -> AIOKafkaConsumer:
        consumer = make_consumer(
            self.config.kafka,
            "alerting",
            group_id=self.config.group_id,
            auto_offset_reset=self.config.start_from,
            # Partition p of every input topic to the same process: they are co-partitioned.
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        await start_client(consumer)
        return consumer

    async def _consume(self) -> None:
        started: list[EventSink] = []
        store_started = False
        try:
            await create_topics(self.config, self.topics, self._retry)
            for sink in self.sinks:
                await self._retry(f"starting sink {sink.name}", sink.start)
                started.append(sink)
            await self._retry("starting the state store", self.store.start)
            store_started = True
            self.shards.partitions = await input_partitions(self.topics, self.store, self._retry)
            consumer = await self._retry("starting consumer", self._start_consumer)
            self._consumer = consumer
            consumer.subscribe(list(input_topics(self.topics)), listener=_Rebalance(self))
            log.info(
                "alerting: %d rule(s), %s -> %s, alert log %s, state in %s",
                self.rule_count,
                self.topics.telemetry_normalized,
                self.topics.alert_events,
                self.config.alert_log,
                self.topics.alerting_state,
            )
            self.ready.set()
            while not self._stopping.is_set():
                await self._poll_once(consumer)
        except StopRequestedError:
            pass  # stopping: whatever was not committed is redelivered on the next start
        except TopicSetupError as exc:
            log.error("cannot set up topics: %s; stopping", exc)
            raise
        finally:
            self._stopping.set()  # lets the other tasks finish too
            await self._close(started, store_started)

    async def _close(self, sinks: list[EventSink], store_started: bool) -> None:
        if store_started:
            with contextlib.suppress(KafkaError, CheckpointTooLargeError):
                async with self._lock:
                    await self.checkpoints.flush(self.shards.by_partition.values())
        if self._consumer is not None:
            await self._consumer.stop()
        if store_started:
            await self.store.close()
        for sink in reversed(sinks):
            await sink.close()

    # --- commands ---------------------------------------------------------------------------------
    async def _follow_commands(self) -> None:
        waits = [asyncio.create_task(e.wait()) for e in (self.ready, self._stopping)]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if self._stopping.is_set():
            return
        topic = self.topics.alerting_commands
        # Stopped while still trying: a clean stop, as in _consume, not an error.
        with contextlib.suppress(StopRequestedError):
            partitions = await self._retry(
                f"reading the partitions of {topic}", partial(self.store.partition_count, topic)
            )
            await self._retry(
                "following commands",
                partial(
                    follow, self.config.kafka, topic, partitions, self._command, self._stopping,
                    self.commands_ready,
                ),
            )  # fmt: skip

    async def _command(self, command: BaselineCommand) -> None:
        async with self._lock:
            shards = list(self.shards.by_partition.values())
            try:
                applied = apply([s.engine for s in shards], command)
            except Exception:  # a rule's bug loses the command, not the service
                self.stats.skipped[DlqReason.INTERNAL_ERROR] += 1
                log.exception("baseline command %s of rule %s failed", command.action, command.rule)
                applied = -1  # it may have changed some engines before it failed
            for shard in shards:
                shard.dirty = shard.dirty or applied != 0
        self.stats.commands += 1
        if applied < 0:
            return
        log.info(
            "command %s of rule %s for %s (by %s): applied in %d of %d engine(s) here",
            command.action,
            command.rule,
            command.series,
            command.by or "unknown",
            applied,
            len(shards),
        )

    # --- partitions coming and going -----------------------------------------------------------
    async def take_over(self, partitions: set[int]) -> None:
        """Restore the shards of newly assigned partitions and seek to their checkpoints."""
        async with self._lock:
            new = partitions - set(self.shards.by_partition)
            if not new:
                return
            loaded = await self._retry("loading checkpoints", lambda: self.store.load(new))
            assert self._consumer is not None
            for partition in sorted(new):
                checkpoint = loaded.get(partition)
                shard = self.shards.add(partition, checkpoint)
                if checkpoint is None:
                    continue
                self.stats.restored += 1
                for topic, offset in checkpoint.offsets.items():
                    self._consumer.seek(TopicPartition(topic, partition), offset)
                shard.republished = await self._retry(
                    "reading the alert events published since the checkpoint",
                    partial(
                        self.store.published_since,
                        self.topics.alert_events,
                        checkpoint.taken_at,
                    ),
                )
            log.info(
                "alerting owns partitions %s (%d restored from checkpoints%s)",
                sorted(self.shards.by_partition),
                len(loaded),
                f"; rules started afresh: {', '.join(sorted(self.shards.fresh_rules))}"
                if self.shards.fresh_rules
                else "",
            )

    def _settled(
        self,
        consumer: AIOKafkaConsumer,
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        """The records of a poll that spanned a rebalance that may be evaluated (the gate is
        open: the shards are the assignment). Some may have been fetched before the take-over
        sought to a checkpoint: a restored partition reads again from its shard's offset. A
        fresh one keeps them (they come from the group's committed offset, as it would read)."""
        kept = {}
        for tp, records in batches.items():
            shard = self.shards.by_partition.get(tp.partition)
            if shard is None:
                continue  # another process's now
            offset = shard.offsets.get(tp.topic)
            if offset is None:
                kept[tp] = records
            else:
                consumer.seek(tp, offset)
        return kept

    async def hand_over(self, partitions: set[int]) -> None:
        """Checkpoint the shards of revoked partitions for their next owner, then drop them."""
        async with self._lock:
            gone = [s for p, s in self.shards.by_partition.items() if p in partitions]
            with contextlib.suppress(KafkaError, CheckpointTooLargeError):
                await self.checkpoints.flush(gone)  # failing that, the next owner replays further
            for shard in gone:
                self.shards.remove(shard.partition)

    # --- the loop ------------------------------------------------------------------------------
    async def _poll_once(self, consumer: AIOKafkaConsumer) -> None:
        epoch = self.gate.epoch
        batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=MAX_POLL_RECORDS)
        if self.gate.spanned(epoch):
            if not await self.gate.wait():
                return
            batches = self._settled(consumer, batches)
        took: dict[str, float] = {}
        mark = time.perf_counter()

        def phase(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            took[name], mark = now - mark, now

        async with self._lock:
            phase("lock")
            events: list[AlertEvent] = []
            readings = 0
            for records in batches.values():
                for record in records:
                    readings += self._evaluate(record, events)
            phase("evaluate")
            events.extend(self.shards.advance())  # what event time alone decides
            phase("advance")
            await self.pipeline.process(events)
            phase("publish")
            self.stats.events.update(event.kind.value for event in events)
            self.stats.readings += readings
            self.stats.republished_skipped = sum(
                s.skipped for s in self.shards.by_partition.values()
            )
            self.checkpoints.turn(self.shards.by_partition.values())
            phase("checkpoint")
        if batches:
            await self._commit(consumer)
            phase("commit")
        self.stats.poll_took(took)

    def _evaluate(self, record: ConsumerRecord[bytes, bytes], events: list[AlertEvent]) -> int:
        """Appends the record's events; returns how many readings it held."""
        self.stats.messages += 1
        if not record.value:
            self._undecodable(Rejection(DlqReason.EMPTY_PAYLOAD, "no value"), record)
            return 0
        try:
            raised, readings = self.shards.evaluate(record)
        except DecodeError as exc:
            self._undecodable(Rejection(exc.reason, "; ".join(exc.details[:3])), record)
            return 0
        except RefusedError as exc:
            self._skips.skip(record, exc.rejection)
            return 0
        except Exception as exc:
            # Not a rule's (the engine contains those): the events this record made so far are
            # lost with it, and the engine keeps whatever it had changed.
            self._skips.skip(record, internal_error(exc), exc)
            return 0
        events.extend(raised)
        return readings

    def _undecodable(self, rejection: Rejection, record: ConsumerRecord[bytes, bytes]) -> None:
        self.stats.undecodable[rejection.reason] += 1
        self._skips.skip(record, rejection)

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        try:
            await consumer.commit()
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance took the partitions away: their new owner re-reads from the last
            # commit and produces the same alert ids again (at-least-once).
            self.stats.commit_failures += 1
            self._commit_errors.once(type(exc).__name__, "offset commit failed: %s", exc)
        else:
            self.stats.commits += 1
