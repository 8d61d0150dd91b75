"""One engine per input partition: the unit of state that moves between alerting processes.

The inputs are co-partitioned (telemetry.normalized, gateway.status and telemetry.completeness
are keyed by gateway, with one partition count), so partition p of each carries everything
about the same gateways: a shard holds their machines' rule state, their sessions and their
gaps, and a checkpoint of it is complete. Two processes in one consumer group split the
partitions, so the gateways; a shard's checkpoint is what the next owner starts from.

Event time per shard: each shard advances to the newest source time this process has seen on
any shard (gateways' clocks agree to within the lateness, and a gateway gone quiet must not
stop its own shard's clock: its silence is what the stale rule is there to see). A process
that owns only idle shards moves their event time on with the wall clock from their newest
reading, once they have been idle for `idle_after_s`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiokafka import ConsumerRecord

from alerting.checkpoint import Checkpoint
from alerting.engine import Engine
from alerting.inputs import evaluate
from alerting.state_store import EventId, event_id
from plantmesh.contracts import AlertEvent
from plantmesh.kafka.clients import key_partition
from plantmesh.topics import Topics

IDLE_AFTER_S = 10.0


@dataclass
class Shard:
    partition: int
    engine: Engine
    offsets: dict[str, int] = field(default_factory=dict)
    """Per input topic, the next offset to read: everything before it is in the engine."""
    republished: set[EventId] = field(default_factory=set)
    """Events published before a crash that the replay from the checkpoint makes again."""
    skipped: int = 0
    dirty: bool = False
    """Changed since its last checkpoint."""
    checkpointed: float = field(default_factory=time.monotonic)
    """When its last checkpoint was written (monotonic clock; at creation: restored or new)."""
    last_record: float = field(default_factory=time.monotonic)

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.partition, self.engine, dict(self.offsets))

    def keep(self, events: list[AlertEvent]) -> list[AlertEvent]:
        """The events not published before (each republished one is skipped once)."""
        if not self.republished or not events:
            return events
        kept = []
        for event in events:
            key = event_id(event)
            if key in self.republished:
                self.republished.discard(key)
                self.skipped += 1
            else:
                kept.append(event)
        return kept


class Shards:
    def __init__(
        self,
        topics: Topics,
        new_engine: Callable[[], Engine],
        idle_after_s: float = IDLE_AFTER_S,
    ) -> None:
        self.topics = topics
        self.new_engine = new_engine
        self.idle_after_s = idle_after_s
        self.by_partition: dict[int, Shard] = {}
        self.fresh_rules: set[str] = set()
        """Rules that did not find their state in a checkpoint (new or changed)."""
        self.partitions = 0
        """telemetry.normalized's partition count (0: unknown, shard by record partition)."""
        self.elsewhere = 0
        """Gateway messages for a gateway whose batches another process owns (topics with
        different partition counts): skipped, that process does not see them either."""
        self.advance_errors = 0
        """Shards whose event time could not be moved on (see advance)."""

    def add(self, partition: int, checkpoint: Checkpoint | None) -> Shard:
        engine = self.new_engine()
        shard = Shard(partition, engine)
        if checkpoint is not None:
            self.fresh_rules.update(engine.adopt(checkpoint.engine))
            shard.offsets = dict(checkpoint.offsets)
        self.by_partition[partition] = shard
        return shard

    def remove(self, partition: int) -> Shard | None:
        return self.by_partition.pop(partition, None)

    def shard_of(self, record: ConsumerRecord[bytes, bytes]) -> Shard | None:
        """The shard of the gateway a record is about. Co-partitioned topics: its partition's.
        A gateway message is placed by its key, as the gateway's batches are, so it reaches
        the right shard also when the topics' partition counts differ."""
        partition = record.partition
        if record.topic != self.topics.telemetry_normalized and record.key and self.partitions:
            partition = key_partition(record.key, self.partitions)
        return self.by_partition.get(partition)

    def evaluate(self, record: ConsumerRecord[bytes, bytes]) -> tuple[list[AlertEvent], int]:
        """The new events of one record and its readings (DecodeError and RefusedError
        propagate; the record counts as consumed either way, only a usable one as a sign of
        life)."""
        shard = self.shard_of(record)
        if shard is None:
            self.elsewhere += 1
            return [], 0
        if shard.partition == record.partition:  # else not this shard's offset to restore
            shard.offsets[record.topic] = record.offset + 1
        shard.dirty = True
        events, readings = evaluate(shard.engine, self.topics, record)
        shard.last_record = time.monotonic()
        return shard.keep(events), readings

    def advance(self) -> list[AlertEvent]:
        """Event time moved on in every shard (see the module docstring)."""
        newest = self.newest()
        now = time.monotonic()
        events: list[AlertEvent] = []
        for shard in self.by_partition.values():
            engine = shard.engine
            try:
                watermark = None if newest is None else newest - engine.lateness
                idle_s = now - shard.last_record
                if engine.newest is not None and idle_s >= self.idle_after_s:
                    idle = engine.newest - engine.lateness + timedelta(seconds=idle_s)
                    watermark = idle if watermark is None else max(watermark, idle)
            except OverflowError:
                # Event time near datetime's limits, restored from a checkpoint written before
                # such times were refused (alerting/poison.py): the other shards go on.
                self.advance_errors += 1
                continue
            if watermark is not None:
                found = engine.advance(watermark)
                if found:
                    shard.dirty = True
                    events.extend(shard.keep(found))
        return events

    def newest(self) -> datetime | None:
        times = [s.engine.newest for s in self.by_partition.values() if s.engine.newest]
        return max(times) if times else None
