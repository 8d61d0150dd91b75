"""The incident stage's first loop: alerts.events (keyed plant/machine) re-keyed to
alerts.by_class (keyed `<machine class>/<issue type>`), so every plant's alerts of one pattern
reach one partition, so one correlator.

Only what can make an incident is passed on: alarm transitions (the alarm service's records on
the same topic), events without a machine class and issue types without a correlation policy
stay behind. Input offsets are committed once alerts.by_class acknowledged what they cover: a
crash or a rebalance re-sends some, and the correlator ignores an alert it has seen.

No poison pill (alerting/poison.py): a record that is not an alert event, one the correlator
cannot use, one whose routing raises, or one Kafka refuses as too large for alerts.by_class is
skipped, counted by reason (stats.skipped) and logged once per kind."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import CommitFailedError, KafkaError

from alerting.incidents.plumbing import Retrier, Undecodable, send_fitting
from alerting.incidents.policy import CorrelationConfig
from alerting.incidents.stage_config import IncidentsConfig
from alerting.incidents.stats import StageStats
from alerting.poison import Skips, event_problem, internal_error
from plantmesh.contracts import AlertEvent, DecodeError, decode, is_transition
from plantmesh.dead_letters import Rejection
from plantmesh.kafka.clients import Producer, make_consumer, make_producer, start_client
from plantmesh.resilience import ErrorLog, StopRequestedError
from plantmesh.topics import DlqReason, Topics

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 200  # also bounds how long stop() takes to be noticed
MAX_POLL_RECORDS = 500


def class_key(event: AlertEvent) -> bytes | None:
    """The key on alerts.by_class; None without a machine class."""
    if event.machine_class is None:
        return None
    return f"{event.machine_class}/{event.issue_type}".encode()


class Rekey:
    def __init__(
        self,
        config: IncidentsConfig,
        policy: CorrelationConfig,
        stats: StageStats,
        stop: asyncio.Event,
        retry: Retrier,
    ) -> None:
        self.config = config
        self.policy = policy
        self.topics = Topics(config.namespace)
        self.stats = stats
        self.stop = stop
        self.retry = retry
        self.assigned = asyncio.Event()
        """Set once the consumer holds partitions (tests wait for it)."""
        self._undecodable = Undecodable(log, stats.undecodable, stats.skipped)
        self._skips = Skips(log, stats.skipped, "record")
        self._commit_errors = ErrorLog(log, "re-key offset commit")

    async def _start_producer(self) -> Producer:
        producer = make_producer(self.config.kafka, "incidents-rekey")
        await start_client(producer)
        return producer

    async def _start_consumer(self) -> AIOKafkaConsumer:
        consumer = make_consumer(
            self.config.kafka,
            "incidents-rekey",
            self.topics.alert_events,
            group_id=self.config.rekey_group_id,
            auto_offset_reset=self.config.start_from,
        )
        await start_client(consumer)
        return consumer

    async def run(self) -> None:
        """Until the stage stops (sink first, source last; closed in reverse)."""
        producer: Producer | None = None
        consumer: AIOKafkaConsumer | None = None
        try:
            producer = await self.retry("starting the re-keying producer", self._start_producer)
            consumer = await self.retry("starting the re-keying consumer", self._start_consumer)
            while not self.stop.is_set():
                await self._poll_once(consumer, producer)
        except StopRequestedError:
            pass  # what was not committed is read again on the next start
        finally:
            self.stop.set()  # the other loop ends too
            if consumer is not None:
                await consumer.stop()
            if producer is not None:
                await producer.stop()

    async def _poll_once(self, consumer: AIOKafkaConsumer, producer: Producer) -> None:
        batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=MAX_POLL_RECORDS)
        if consumer.assignment():
            self.assigned.set()
        if not batches:
            return
        out: list[tuple[bytes, bytes]] = []
        sources: list[ConsumerRecord[bytes, bytes]] = []
        for records in batches.values():
            for record in records:
                try:
                    key = self._route(record)
                except Exception as exc:
                    self._skips.skip(record, internal_error(exc), exc)
                    continue
                if key is not None and record.value is not None:
                    out.append((key, record.value))  # the event's own bytes, unchanged
                    sources.append(record)
        if out:
            topic = self.topics.alerts_by_class
            send = partial(send_fitting, producer, topic, out)
            refused = await self.retry(f"producing to {topic}", send)
            for index in refused:
                detail = f"{topic} refused it as too large"
                self._skips.skip(sources[index], Rejection(DlqReason.KAFKA_REJECTED, detail))
            self.stats.rekeyed += len(out) - len(refused)
        try:
            await consumer.commit()
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance took the partitions away: their new owner re-sends from the last
            # commit, and the correlator ignores what it has seen.
            self.stats.commit_failures += 1
            self._commit_errors.once(type(exc).__name__, "re-key offset commit failed: %s", exc)

    def _route(self, record: ConsumerRecord[bytes, bytes]) -> bytes | None:
        """The record's key on alerts.by_class, or None if it stays behind."""
        self.stats.events += 1
        if is_transition(record.headers):
            self.stats.transitions += 1  # the alarm service's records share the topic
            return None
        try:
            event = decode(AlertEvent, record.value or b"")
        except DecodeError as exc:
            self._undecodable.skip(record, exc)
            return None
        problem = event_problem(event)
        if problem is not None:
            self._skips.skip(record, problem)
            return None
        key = class_key(event)
        if key is None:
            self.stats.unclassed += 1
            return None
        if self.policy.for_issue(event.issue_type) is None:
            self.stats.uncorrelated += 1
            return None
        return key
