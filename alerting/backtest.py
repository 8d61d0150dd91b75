"""Backtesting: recorded readings through a rule configuration, offline.

The engine has no I/O and no wall clock, so feeding it the batches the service consumed, in the
same order, with `advance()` where the service called it, gives the alert events the service
gave. That lets a rule change be tried on last week's data before it pages anyone. Sources: a
`telemetry.normalized` topic read without a consumer group (nothing committed, no member of the
live group disturbed), or JSON-lines files."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from alerting.catalogue import load_catalogue
from alerting.config import AlertingConfig
from alerting.engine import Engine
from alerting.poison import batch_problem
from plantmesh.connections import KafkaConnection
from plantmesh.contracts import AlertEvent, DecodeError, Name, ReadingBatch, decode
from plantmesh.contracts.common import WireModel
from plantmesh.dead_letters import header
from plantmesh.kafka.clients import make_consumer, start_client
from plantmesh.kafka.security import kafka_client_options
from plantmesh.resilience import ErrorLog
from plantmesh.topics import HEADER_MACHINE_CLASS, DlqReason

log = logging.getLogger(__name__)

Item = tuple[ReadingBatch, str | None]
"""A batch and its machine's class (the `machine_class` header), as the service sees them."""

FETCH_TIMEOUT_MS = 500


class BacktestError(Exception):
    """Input a backtest cannot read: the message names the file and line, or the topic."""


@dataclass
class Progress:
    """Counts so far, reported on `stream` every `every_batches` batches or `every_s` seconds,
    so someone replaying hours of data sees it move. No stream: counts only."""

    stream: TextIO | None = None
    every_batches: int = 10_000
    every_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    batches: int = 0
    readings: int = 0
    events: int = 0
    _due: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._due = self.clock() + self.every_s

    def count(self, readings: int, events: int, event_time: datetime | None) -> None:
        self.batches += 1
        self.readings += readings
        self.events += events
        if self.stream is None:
            return
        if self.batches % self.every_batches == 0 or self.clock() >= self._due:
            self.report(event_time)

    def report(self, event_time: datetime | None) -> None:
        if self.stream is None:
            return
        self._due = self.clock() + self.every_s
        reached = f", event time {event_time.isoformat()}" if event_time else ""
        print(
            f"backtest: {self.batches} batches, {self.readings} readings, "
            f"{self.events} events{reached}",
            file=self.stream,
            flush=True,
        )


class Backtest:
    """The service's evaluate loop without Kafka: `feed` batches in order, then `finish`."""

    def __init__(
        self, config: AlertingConfig, *, advance_every: int = 1, progress: Progress | None = None
    ) -> None:
        if advance_every < 1:
            raise ValueError(f"advance_every must be at least 1, got {advance_every}")
        catalogue = load_catalogue(config.catalogue)
        self.engine = Engine.from_config(config.rules, catalogue, lateness_s=config.lateness_s)
        self.advance_every = advance_every
        self.progress = progress if progress is not None else Progress()
        self.events: list[AlertEvent] = []
        self._unadvanced = 0

    def feed(self, batch: ReadingBatch, machine_class: str | None = None) -> list[AlertEvent]:
        events = self.engine.process_batch(batch, machine_class)
        self._unadvanced += 1
        if self._unadvanced >= self.advance_every:
            # The service advances after each poll; advance_every=1 is a poll per batch.
            events.extend(self.engine.advance())
            self._unadvanced = 0
        self.events.extend(events)
        self.progress.count(len(batch.readings), len(events), self.engine.newest)
        return events

    def finish(self) -> list[AlertEvent]:
        """Advance once more (what event time alone decides) and return every event."""
        events = self.engine.advance()
        self.events.extend(events)
        self.progress.events += len(events)
        return self.events


def backtest(
    config: AlertingConfig,
    batches: Iterable[Item],
    *,
    advance_every: int = 1,
    progress: Progress | None = None,
) -> list[AlertEvent]:
    """The alert events `config` gives on `batches`: the engine built as the service builds it,
    advanced after every `advance_every` batches and once at the end."""
    run = Backtest(config, advance_every=advance_every, progress=progress)
    for batch, machine_class in batches:
        run.feed(batch, machine_class)
    return run.finish()


def summarize(events: Iterable[AlertEvent]) -> list[str]:
    """Raised and cleared counts per rule and per issue type, as aligned text lines."""
    by_rule: Counter[tuple[str, str]] = Counter()
    by_issue: Counter[tuple[str, str]] = Counter()
    for event in events:
        by_rule[event.rule, event.kind.value] += 1
        by_issue[event.issue_type, event.kind.value] += 1
    tables = (("rule", by_rule), ("issue type", by_issue))
    width = max(len(name) for title, counts in tables for name in [title, *(n for n, _ in counts)])
    lines = []
    for title, counts in tables:
        names = sorted({name for name, _ in counts})
        lines.append(f"{title:<{width}}  {'raised':>7}  {'cleared':>7}")
        lines.extend(
            f"{name:<{width}}  {counts[name, 'raised']:>7}  {counts[name, 'cleared']:>7}"
            for name in names
        )
    return lines


# --- JSON lines ---------------------------------------------------------------------------------
class ClassifiedBatch(WireModel):
    """A line of a backtest input that says the machine's class (what the Kafka header says)."""

    machine_class: Name | None = None
    batch: ReadingBatch


def read_jsonl(path: Path | str) -> Iterator[Item]:
    """The batches of a JSON-lines file, one per line: a ReadingBatch, or
    `{"machine_class": ..., "batch": {...}}`. Blank lines are skipped; a bad line raises
    BacktestError naming the file and line (a silently shorter replay would mislead)."""
    with Path(path).open("rb") as file:
        for number, line in enumerate(file, 1):
            if line.strip():
                yield _parse_line(line, f"{path}:{number}")


def _parse_line(line: bytes, where: str) -> Item:
    # A cheap guess picks which form to try first; the other is the fallback.
    wrapped = b'"batch"' in line
    try:
        return _decode_line(line, wrapped)
    except DecodeError as first:
        try:
            return _decode_line(line, not wrapped)
        except DecodeError:
            raise BacktestError(f"{where}: {first}") from None


def _decode_line(line: bytes, wrapped: bool) -> Item:
    if wrapped:
        item = decode(ClassifiedBatch, line)
        return item.batch, item.machine_class
    return decode(ReadingBatch, line), None


# --- Kafka --------------------------------------------------------------------------------------
async def read_kafka(
    config: AlertingConfig,
    topic: str,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    skipped: Counter[str] | None = None,
    idle_timeout_s: float = 30.0,
) -> AsyncIterator[Item]:
    """The batches on `topic` with a record time in [since, until), up to each partition's end
    offset at call time, without a consumer group. Partitions are merged by record time, then
    partition, then offset, so the same data gives the same order, hence the same events.
    Undecodable records are skipped and counted by reason in `skipped`."""
    skipped = skipped if skipped is not None else Counter()
    errors = ErrorLog(log, "decoding")
    consumer = make_consumer(config.kafka, "backtest", group_id=None)
    await start_client(consumer)
    try:
        ranges = await _offset_ranges(consumer, config.kafka, topic, since, until)
        async for record in _merged(consumer, ranges, idle_timeout_s):
            item = _decoded(record, skipped, errors)
            if item is not None:
                yield item
    finally:
        await consumer.stop()


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


async def _partition_ids(kafka: KafkaConnection, topic: str) -> list[int]:
    """The consumer knows only whether a topic exists; its partitions come from the admin API."""
    admin = AIOKafkaAdminClient(**kafka_client_options(kafka), client_id=kafka.client_id)
    try:
        await admin.start()
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"]:
        raise BacktestError(f"topic {topic}: metadata error {described['error_code']}")
    return sorted(p["partition"] for p in described["partitions"])


async def _offset_ranges(
    consumer: AIOKafkaConsumer,
    kafka: KafkaConnection,
    topic: str,
    since: datetime | None,
    until: datetime | None,
) -> dict[TopicPartition, tuple[int, int]]:
    """[start, end) offsets per partition, only those with something to read."""
    # All-topics metadata first: asking for a missing topic by name would create it.
    if topic not in await consumer.topics():
        raise BacktestError(f"topic {topic} does not exist")
    partitions = [TopicPartition(topic, p) for p in await _partition_ids(kafka, topic)]
    starts: dict[TopicPartition, int] = await consumer.beginning_offsets(partitions)
    ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    if since is not None:
        found = await consumer.offsets_for_times({tp: _ms(since) for tp in partitions})
        # No record at or after `since`: nothing to read there.
        starts = {tp: ends[tp] if found[tp] is None else found[tp].offset for tp in partitions}
    if until is not None:
        found = await consumer.offsets_for_times({tp: _ms(until) for tp in partitions})
        ends = {
            tp: ends[tp] if found[tp] is None else min(found[tp].offset, ends[tp]) for tp in ends
        }
    return {tp: (starts[tp], ends[tp]) for tp in partitions if starts[tp] < ends[tp]}


Buffers = dict[TopicPartition, deque[ConsumerRecord[bytes, bytes]]]


async def _merged(
    consumer: AIOKafkaConsumer,
    ranges: dict[TopicPartition, tuple[int, int]],
    idle_timeout_s: float,
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """The records of `ranges`, merged: a record goes out only once every partition that can
    still deliver has one waiting, so fetch timing never changes the order."""
    if not ranges:
        return
    consumer.assign(list(ranges))
    for tp, (start, _) in ranges.items():
        consumer.seek(tp, start)
    buffers: Buffers = {tp: deque() for tp in ranges}
    unread = set(ranges)  # partitions not yet fetched up to their end
    while unread or any(buffers.values()):
        starving = sorted(tp for tp in unread if not buffers[tp])
        if starving:
            await _fill(consumer, starving, buffers, ranges, unread, idle_timeout_s)
            continue
        tp = min((tp for tp in buffers if buffers[tp]), key=lambda tp: _order(buffers[tp][0]))
        yield buffers[tp].popleft()


def _order(record: ConsumerRecord[bytes, bytes]) -> tuple[int, int, int]:
    return record.timestamp, record.partition, record.offset


async def _fill(
    consumer: AIOKafkaConsumer,
    starving: list[TopicPartition],
    buffers: Buffers,
    ranges: dict[TopicPartition, tuple[int, int]],
    unread: set[TopicPartition],
    idle_timeout_s: float,
) -> None:
    """Fetch until a starving partition gets records or reaches its end."""
    deadline = asyncio.get_running_loop().time() + idle_timeout_s
    while True:
        fetched = await consumer.getmany(*starving, timeout_ms=FETCH_TIMEOUT_MS)
        for tp, records in fetched.items():
            end = ranges[tp][1]
            buffers[tp].extend(r for r in records if r.offset < end)
        done = [tp for tp in starving if await consumer.position(tp) >= ranges[tp][1]]
        unread.difference_update(done)
        if fetched or done:
            return
        if asyncio.get_running_loop().time() > deadline:
            names = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in starving)
            raise BacktestError(f"no records from {names} for {idle_timeout_s:g} s")


def _decoded(
    record: ConsumerRecord[bytes, bytes], skipped: Counter[str], errors: ErrorLog
) -> Item | None:
    where = f"{record.topic}[{record.partition}]@{record.offset}"
    if not record.value:
        skipped[DlqReason.EMPTY_PAYLOAD.value] += 1
        return None
    try:
        batch = decode(ReadingBatch, record.value)
    except DecodeError as exc:
        skipped[str(exc.reason)] += 1
        errors.once(exc.reason, "skipping undecodable record at %s: %s", where, exc)
        return None
    found = header(record.headers or (), HEADER_MACHINE_CLASS)
    machine_class = found.decode(errors="replace") if found else None
    problem = batch_problem(batch, machine_class)  # what the service skips, a replay skips
    if problem is not None:
        skipped[str(problem.reason)] += 1
        errors.once(problem.reason, "skipping record at %s: %s", where, problem.detail)
        return None
    return batch, machine_class
