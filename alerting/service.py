"""The alerting service: normalized readings from Kafka -> rules -> alert events to the log,
the alert log file and Kafka, committing consumer offsets only once the events are out.

Startup order follows the data backwards: topics, then sinks, then the consumer (the source);
shutdown closes the consumer first and the sinks last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import CommitFailedError, KafkaError

from alerting.catalogue import load_catalogue
from alerting.config import AlertingConfig
from alerting.engine import Engine
from alerting.inputs import evaluate, input_topics
from alerting.pipeline import FanOut, Pipeline
from alerting.sinks import AlertLogSink, EventSink, KafkaEventSink, LogSink, SinkError
from plantmesh.contracts import AlertEvent, DecodeError
from plantmesh.kafka.admin import TopicSetupError, ensure_topics
from plantmesh.kafka.clients import make_consumer, start_client
from plantmesh.resilience import Backoff, ErrorLog, StopRequestedError, retry_until_stopped
from plantmesh.topics import DlqReason, Topics

log = logging.getLogger(__name__)

T = TypeVar("T")

POLL_TIMEOUT_MS = 200  # also bounds how long stop() takes to be noticed
MAX_POLL_RECORDS = 500


@dataclass
class ServiceStats:
    messages: int = 0
    readings: int = 0
    """Readings evaluated whose alert events are out (counted after the pipeline, so a
    reader that sees this number also sees those events)."""
    undecodable: Counter[str] = field(default_factory=Counter)
    """Skipped messages by reason (malformed_json, schema_mismatch, empty)."""
    events: Counter[str] = field(default_factory=Counter)
    """Alert events published, by kind."""
    commits: int = 0
    commit_failures: int = 0


class AlertingService:
    """In-process: `task = asyncio.create_task(service.run())`, later `service.stop()` and
    `await task`. `ready` is set once the consumer is subscribed."""

    def __init__(self, config: AlertingConfig, engine: Engine | None = None) -> None:
        self.config = config
        self.topics = Topics(config.namespace)
        if engine is None:
            catalogue = load_catalogue(config.catalogue)
            engine = Engine.from_config(config.rules, catalogue, lateness_s=config.lateness_s)
        self.engine = engine
        self.stats = ServiceStats()
        self.ready = asyncio.Event()
        self._stopping = asyncio.Event()
        # Logged once per reason / error type for the life of the service, then only counted.
        self._undecodable = ErrorLog(log, "decoding")
        self._commit_errors = ErrorLog(log, "offset commit")
        self.sinks: list[EventSink] = [
            LogSink(),
            AlertLogSink(config.alert_log),
            KafkaEventSink(config.kafka, self.topics.alert_events),
        ]
        self.pipeline = Pipeline([FanOut(self.sinks, self._stopping)])

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Until stop(); raises TopicSetupError if the broker refuses to create a topic."""
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._consume(), name="alerting.consume")
                tasks.create_task(self._report_stats(), name="alerting.stats")
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
            *input_topics(self.topics),
            group_id=self.config.group_id,
            auto_offset_reset=self.config.start_from,
        )
        await start_client(consumer)
        return consumer

    async def _consume(self) -> None:
        started: list[EventSink] = []
        consumer: AIOKafkaConsumer | None = None
        try:
            topics = (*input_topics(self.topics), self.topics.alert_events)
            new = self.config.kafka_topics
            if new.create:
                await self._retry(
                    "creating topics",
                    lambda: ensure_topics(
                        self.config.kafka, topics, new.partitions, new.replication_factor
                    ),
                )
            for sink in self.sinks:
                await self._retry(f"starting sink {sink.name}", sink.start)
                started.append(sink)
            consumer = await self._retry("starting consumer", self._start_consumer)
            log.info(
                "alerting: %d rule(s), %s -> %s, alert log %s",
                len(self.engine.rules),
                self.topics.telemetry_normalized,
                self.topics.alert_events,
                self.config.alert_log,
            )
            self.ready.set()
            while not self._stopping.is_set():
                await self._poll_once(consumer)
        except StopRequestedError:
            pass  # stopping: whatever was not committed is redelivered on the next start
        except TopicSetupError:
            log.error("cannot set up topics; stopping")
            raise
        finally:
            self._stopping.set()  # lets the other tasks finish too
            if consumer is not None:
                await consumer.stop()
            for sink in reversed(started):
                await sink.close()

    async def _poll_once(self, consumer: AIOKafkaConsumer) -> None:
        batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=MAX_POLL_RECORDS)
        if not batches:
            return
        events: list[AlertEvent] = []
        readings = 0
        for records in batches.values():
            for record in records:
                readings += self._evaluate(record, events)
        events.extend(self.engine.advance())  # what event time alone decides
        await self.pipeline.process(events)
        self.stats.events.update(event.kind.value for event in events)
        self.stats.readings += readings
        await self._commit(consumer)

    def _evaluate(self, record: ConsumerRecord[bytes, bytes], events: list[AlertEvent]) -> int:
        """Appends the record's events; returns how many readings it held."""
        self.stats.messages += 1
        if not record.value:
            self._skip(DlqReason.EMPTY_PAYLOAD, "message without a value", record)
            return 0
        try:
            raised, readings = evaluate(self.engine, self.topics, record)
        except DecodeError as exc:
            self._skip(exc.reason, "; ".join(exc.details[:3]), record)
            return 0
        events.extend(raised)
        return readings

    def _skip(self, reason: str, detail: str, record: ConsumerRecord[bytes, bytes]) -> None:
        self.stats.undecodable[reason] += 1
        self._undecodable.once(
            reason,
            "skipping undecodable message (%s) at %s[%d]@%d: %s (further ones only counted)",
            reason,
            record.topic,
            record.partition,
            record.offset,
            detail,
        )

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

    async def _report_stats(self, interval_s: float = 60.0) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval_s):
                    await self._stopping.wait()
            s = self.stats
            log.info(
                "alerting stats: messages=%d readings=%d events=%s undecodable=%s "
                "commit_failures=%d rule_errors=%d",
                s.messages,
                s.readings,
                dict(s.events),
                dict(s.undecodable),
                s.commit_failures,
                self.engine.rule_errors,
            )
