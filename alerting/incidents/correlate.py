"""The incident stage's second loop: alerts.by_class -> one correlator per input partition ->
IncidentUpdates on incidents.events (key: incident id; header plantmesh-contract:
network-incident/1), incidents closed by the wall clock every `tick_s`.

Durable state, as in the detection service (alerting/service.py): each partition's correlator
is checkpointed with the offset it has consumed up to, to the compacted topic incidents.state,
every `checkpoint_interval_s` (in the background), when Kafka takes the partition away and at a
clean stop (alerting/checkpointing.py, alerting/state_store.py). A new owner restores the
checkpoint and seeks to its offset, or to the partition's start when there is none (the
group's committed offsets only show progress: a commit without its state would lose it) —
with `start_from: latest`, to the group's committed offset or the end instead. The
updates of a poll are acknowledged before the poll ends, and checkpoints are taken between
polls, so a checkpoint never covers an update that is not out: a crash loses none, and its
replay may publish some again (same incident, same version: readers keep the newest).

No poison pill (alerting/poison.py): a record that is not an alert event, one the correlator
cannot use or one it fails on is skipped before or without changing the partition's state
(counted by reason in stats.skipped, logged once per kind); an update Kafka refuses as too
large is dropped the same way (the incident's next update carries its whole picture again);
a correlator failing to close incidents is logged and retried at the next tick."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from alerting.checkpointing import Checkpointer
from alerting.incidents.correlator import Change, Correlator
from alerting.incidents.partitions import Partition, restore
from alerting.incidents.plumbing import Retrier, Undecodable, send_fitting
from alerting.incidents.policy import CorrelationConfig
from alerting.incidents.stage_config import IncidentsConfig
from alerting.incidents.stats import StageStats
from alerting.incidents.updates import to_update
from alerting.poison import Skips, event_problem, internal_error
from alerting.state_store import CheckpointTooLargeError, StateStore
from plantmesh.contracts import (
    CONTRACT_HEADER,
    INCIDENT_CONTRACT,
    AlertEvent,
    DecodeError,
    IncidentUpdate,
    decode,
    encode,
)
from plantmesh.fleet import Fleet
from plantmesh.kafka.assignment_gate import AssignmentGate
from plantmesh.kafka.clients import Producer, make_consumer, make_producer, start_client
from plantmesh.resilience import ErrorLog, StopRequestedError
from plantmesh.topics import DlqReason, Topics

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 200  # also bounds how long stop() takes to be noticed
MAX_POLL_RECORDS = 500
HEADERS = [(CONTRACT_HEADER, INCIDENT_CONTRACT.encode())]


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: Correlate) -> None:
        self.loop = loop

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.loop.gate.close()
        await self.loop.hand_over({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        try:
            await self.loop.take_over({tp.partition for tp in assigned})
        except StopRequestedError:
            pass  # stopping while checkpoints load: the next owner loads them
        except Exception as exc:
            # aiokafka would only log it, and the partitions' records would pass unseen.
            self.loop.failed = exc
        finally:
            self.loop.gate.open()


class Correlate:
    def __init__(
        self,
        config: IncidentsConfig,
        policy: CorrelationConfig,
        fleet: Fleet,
        stats: StageStats,
        stop: asyncio.Event,
        retry: Retrier,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`clock`: the wall clock incidents close by."""
        self.config = config
        self.policy = policy
        self.fleet = fleet
        self.stats = stats
        self.stop = stop
        self.retry = retry
        self.clock = clock
        topics = Topics(config.namespace)
        self.topic = topics.alerts_by_class
        self.out = topics.incident_events
        self.store = StateStore(config.kafka, topics.incidents_state, config.group_id, "incidents")
        self.checkpoints = Checkpointer(
            self.store, config.checkpoint_interval_s, stats, name="incidents"
        )
        self.partitions: dict[int, Partition] = {}
        self.assigned = asyncio.Event()
        """Set once partitions were taken over (tests wait for it)."""
        self.failed: Exception | None = None
        """A take-over that failed for another reason than stopping: raised by the loop."""
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: Producer | None = None
        # Held while records are correlated and their updates published, and while partitions
        # are handed or taken over: a correlator is never checkpointed half-way through a poll.
        self._lock = asyncio.Lock()
        # A poll that spans a rebalance may hold records fetched before the take-over sought
        # to a checkpoint, ahead of it: they are read again from the partition's offset.
        self.gate = AssignmentGate(stop)
        self._poll_ms = max(1, min(POLL_TIMEOUT_MS, int(config.tick_s * 1000)))
        self._last_tick = -math.inf
        self._undecodable = Undecodable(log, stats.undecodable, stats.skipped)
        self._skips = Skips(log, stats.skipped, "record")
        self._commit_errors = ErrorLog(log, "incident offset commit")
        self._tick_errors = ErrorLog(log, "closing incidents")
        self._too_large = ErrorLog(log, f"publishing to {self.out}")

    # --- lifecycle --------------------------------------------------------------------------------
    async def _start_producer(self) -> Producer:
        producer = make_producer(self.config.kafka, "incidents")
        await start_client(producer)
        return producer

    async def _start_consumer(self) -> AIOKafkaConsumer:
        # "earliest": a seek before the log's start (retention) lands on the oldest record.
        consumer = make_consumer(
            self.config.kafka,
            "incidents",
            group_id=self.config.group_id,
            auto_offset_reset="earliest",
        )
        await start_client(consumer)
        return consumer

    async def run(self) -> None:
        """Until the stage stops (sinks first, the source last; closed in reverse)."""
        store_started = False
        try:
            self._producer = await self.retry(
                "starting the incident producer", self._start_producer
            )
            await self.retry("starting the state store", self.store.start)
            store_started = True
            consumer = await self.retry("starting the correlating consumer", self._start_consumer)
            self._consumer = consumer
            consumer.subscribe([self.topic], listener=_Rebalance(self))
            while not self.stop.is_set():
                await self._poll_once(consumer)
        except StopRequestedError:
            pass  # stopping: the checkpoints say where the next start goes on
        finally:
            self.stop.set()  # the other loop ends too
            await self._close(store_started)

    async def _close(self, store_started: bool) -> None:
        if store_started:
            with contextlib.suppress(KafkaError, CheckpointTooLargeError):
                async with self._lock:
                    await self.checkpoints.flush(_safe(self.partitions.values()))
        if self._consumer is not None:
            await self._consumer.stop()
        if store_started:
            await self.store.close()
        if self._producer is not None:
            await self._producer.stop()

    # --- partitions coming and going -----------------------------------------------------------
    async def take_over(self, partitions: set[int]) -> None:
        """Restore the correlators of newly assigned partitions; seek to their checkpoints."""
        async with self._lock:
            new = partitions - set(self.partitions)
            if not new:
                return
            consumer = self._consumer
            assert consumer is not None
            loaded = await self.retry("loading checkpoints", lambda: self.store.load(new))
            tps = {p: TopicPartition(self.topic, p) for p in new}
            ends = await self.retry(
                f"reading the end offsets of {self.topic}",
                lambda: consumer.end_offsets(list(tps.values())),
            )
            restored = 0
            for p in sorted(new):
                checkpoint = loaded.get(p)
                part = None if checkpoint is None else restore(checkpoint, self.topic, self.policy)
                if part is None:
                    if checkpoint is not None:
                        log.error(
                            "the checkpoint of %s[%d] holds no correlator of that topic: the "
                            "partition starts afresh from its beginning",
                            self.topic,
                            p,
                        )
                    part = Partition(p, self.topic, Correlator(self.policy))
                    if self.config.start_from == "latest":
                        part.offset = await self._fresh_start(consumer, tps[p], ends[tps[p]])
                else:
                    restored += 1
                part.replay_to = ends[tps[p]]
                consumer.seek(tps[p], part.offset)
                self.partitions[p] = part
            self.stats.restored += restored
            log.info(
                "incidents owns partitions %s of %s (%d restored from checkpoints)",
                sorted(self.partitions),
                self.topic,
                restored,
            )
            self.assigned.set()

    async def _fresh_start(self, consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> int:
        """`start_from: latest` and no checkpoint: history is not this deployment's (the topic
        may hold another group's, e.g. an earlier demo run's), so start where this group got to,
        or at the end."""
        committed = await self.retry(
            f"reading the committed offset of {tp}", lambda: consumer.committed(tp)
        )
        return end if committed is None else int(committed)

    async def hand_over(self, partitions: set[int]) -> None:
        """Checkpoint the correlators of revoked partitions for their next owner; drop them."""
        async with self._lock:
            gone = [part for p, part in self.partitions.items() if p in partitions]
            with contextlib.suppress(KafkaError, CheckpointTooLargeError):
                await self.checkpoints.flush(
                    _safe(gone)
                )  # failing that, the next owner replays further
            for part in gone:
                del self.partitions[part.partition]

    # --- the loop ------------------------------------------------------------------------------
    async def _poll_once(self, consumer: AIOKafkaConsumer) -> None:
        if self.failed is not None:
            raise self.failed
        epoch = self.gate.epoch
        batches = await consumer.getmany(timeout_ms=self._poll_ms, max_records=MAX_POLL_RECORDS)
        if self.gate.spanned(epoch):
            if await self.gate.wait():  # open: the partitions are the assignment
                self._read_again(consumer, batches)
            return
        async with self._lock:
            updates: list[IncidentUpdate] = []
            touched: list[Partition] = []
            for tp, records in batches.items():
                part = self.partitions.get(tp.partition)
                if part is None:
                    continue  # revoked since the fetch: its next owner reads these
                part.unsafe = part.dirty = True
                touched.append(part)
                for record in records:
                    if record.offset >= part.offset:  # else already in the correlator
                        updates += self._correlate(part, record)
                        part.offset = record.offset + 1
            updates += self._tick(touched)
            if updates:
                await self._publish(updates)
            for part in touched:
                part.unsafe = False
            self.checkpoints.turn(self.partitions.values())
            offsets = {TopicPartition(self.topic, p): s.offset for p, s in self.partitions.items()}
        if batches and offsets:
            await self._commit(consumer, offsets)

    def _read_again(self, consumer: AIOKafkaConsumer, batches: Iterable[TopicPartition]) -> None:
        """Each partition of a dropped poll from where its correlator got to (take_over sought
        every partition it took there too, so no record is read twice or passed over)."""
        for tp in batches:
            if (part := self.partitions.get(tp.partition)) is not None:
                consumer.seek(tp, part.offset)

    def _tick(self, touched: list[Partition]) -> list[IncidentUpdate]:
        """Every `tick_s`: incidents quiet for their hold closed, in partitions whose replay
        has caught up (see partitions.py)."""
        now = time.monotonic()
        if now - self._last_tick < self.config.tick_s:
            return []
        self._last_tick = now
        updates: list[IncidentUpdate] = []
        failed = False
        for part in self.partitions.values():
            if not part.caught_up:
                continue
            try:
                changes = part.correlator.advance(self.clock())
                made = self._updates(changes)
            except Exception as exc:  # a bug: this partition tries again at the next tick
                self.stats.correlator_errors += 1
                self._tick_errors.failed(exc, logging.ERROR)
                failed = True
                continue
            if changes:
                part.unsafe = part.dirty = True
                touched.append(part)
                updates += made
        if not failed:
            self._tick_errors.succeeded()
        return updates

    def _correlate(
        self, part: Partition, record: ConsumerRecord[bytes, bytes]
    ) -> list[IncidentUpdate]:
        try:
            event = decode(AlertEvent, record.value or b"")
        except DecodeError as exc:
            self._undecodable.skip(record, exc)
            return []
        problem = event_problem(event)  # e.g. a time whose window arithmetic would overflow
        if problem is not None:
            self._skips.skip(record, problem)
            return []
        self.stats.correlated += 1
        try:
            return self._updates(part.correlator.on_event(event, self.clock()))
        except Exception as exc:
            # A bug in the pure logic must not stop the partition on this record for good.
            self.stats.correlator_errors += 1
            self._skips.skip(record, internal_error(exc), exc)
            return []

    def _updates(self, changes: list[Change]) -> list[IncidentUpdate]:
        updates = []
        for change in changes:
            # Not None: the correlator keeps no state for issue types without a policy.
            policy = self.policy.for_issue(change.incident.issue_type)
            if policy is not None:
                updates.append(to_update(change, self.fleet, policy))
        return updates

    async def _publish(self, updates: list[IncidentUpdate]) -> None:
        assert self._producer is not None
        records = [(u.incident_id.encode(), encode(u)) for u in updates]
        send = partial(send_fitting, self._producer, self.out, records, HEADERS)
        refused = set(await self.retry(f"publishing to {self.out}", send))
        for index, update in enumerate(updates):
            if index in refused:
                self.stats.skipped[DlqReason.KAFKA_REJECTED] += 1
                self._too_large.once(
                    DlqReason.KAFKA_REJECTED,
                    "incident update %s v%d refused as too large (%d bytes); dropped, further "
                    "ones only counted",
                    update.incident_id,
                    update.version,
                    len(records[index][1]),
                    level=logging.ERROR,
                )
                continue
            self.stats.updates[update.change.value] += 1
            log.info(
                "incident %s %s (v%d): %s on %s in %s, %d machine(s)",
                update.incident_id,
                update.change.value,
                update.version,
                update.issue_type,
                update.machine_class,
                ", ".join(update.plants),
                len(update.members),
            )

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        """Progress for whoever watches the group's lag; restarts go by the checkpoints."""
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            self.stats.commit_failures += 1
            self._commit_errors.once(type(exc).__name__, "incident offset commit failed: %s", exc)


def _safe(partitions: Iterable[Partition]) -> list[Partition]:
    """Those whose correlator may be checkpointed (see Partition.unsafe)."""
    return [p for p in partitions if not p.unsafe]
