"""One poll of telemetry.raw, checked reading by reading and turned into what goes out.

Bad messages and bad readings become DLQ entries, each on its own with its reason; good batches
wait for InfluxDB, then travel on to telemetry.normalized (unchanged ones as they came:
re-encoding costs more than checking); each checked batch's sequence number goes to
telemetry.sequences for the completeness ledger. Checking a whole poll is 100+ ms of CPU, so it
yields to the loop now and then: the stores in flight keep InfluxDB busy meanwhile.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka.structs import TopicPartition

from ingest.checks.checker import Checked, Checker, Limits
from ingest.checks.identity import Origins
from ingest.config import IngestConfig
from ingest.ledger.state import SeqRecord
from ingest.line_protocol import timestamp_ns
from ingest.normalize.registry import AssetRegistry
from ingest.writer.duplicates import BatchDigests, Seen
from plantmesh.dead_letters import Rejection, RejectionLog, dlq_headers, kafka_source
from plantmesh.kafka.refusals import Outgoing
from plantmesh.topics import (
    HEADER_DLQ_READING_INDEX,
    HEADER_MACHINE_CLASS,
    HEADER_REGISTRY_VERSION,
    DlqReason,
    gateway_key,
)

UNKNOWN_PLANT = "unknown"
PREPARE_SLICE = 25
MACHINE_CACHE_SIZE = 100_000
"""Messages checked between yields to the loop: a whole poll takes 100+ ms of CPU, and InfluxDB
would sit idle that long once its write returned, its next request not yet sent."""


def internal_error(exc: BaseException) -> Rejection:
    """The DLQ label of a message whose handling raised `exc`: a bug or a case nobody thought
    of, set aside with its type so that it can be found, while the service goes on."""
    return Rejection(DlqReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")


def _conflict(checked: Checked) -> Rejection:
    return Rejection(
        DlqReason.CONFLICTING_DUPLICATE,
        f"gateway {checked.gateway_id} session {checked.session_id} seq {checked.seq} was "
        "stored already with other content; the stored values are kept",
    )


@dataclass(frozen=True)
class Good:
    """A raw message with at least one good reading."""

    record: Any  # aiokafka ConsumerRecord
    checked: Checked

    @property
    def lines(self) -> list[str]:
        return self.checked.lines


@dataclass
class Poll:
    """What one `getmany` turned into; committed as a whole once everything of it went out."""

    offsets: dict[TopicPartition, int]
    """The next offset of each partition the poll read."""
    good: list[Good] = field(default_factory=list)
    outgoing: list[Outgoing] = field(default_factory=list)
    """DLQ entries so far; the normalized copies join them once InfluxDB took the points."""
    sequences: list[Outgoing] = field(default_factory=list)


class Preparer:
    """Checks polls against the contract, the time bounds and the asset registry."""

    def __init__(self, config: IngestConfig, rejections: RejectionLog) -> None:
        self.topics = config.topics
        path = config.writer.registry
        self.registry = AssetRegistry.load(path) if path is not None else None
        self._classes: dict[bytes, bytes | None] = {}
        limits = config.writer.validation
        self._checker = Checker(
            Limits(limits.max_message_bytes, limits.max_future_s, limits.max_past_s),
            self.registry,
            max_series_per_plant=limits.max_series_per_plant,
        )
        self._sequences = config.writer.completeness.enabled
        self._rejections = rejections
        self.digests = BatchDigests(limits.duplicate_window)
        self.read_until: dict[TopicPartition, int] = {}
        """Per partition, the offset up to which this process has checked messages: the
        duplicate window's recall (ingest.writer.recall) need not read those again."""
        self._origins = Origins(self.topics)

    async def prepare(self, records: dict[TopicPartition, list[Any]]) -> Poll:
        """Check and normalize everything one `getmany` returned, yielding to the loop every
        PREPARE_SLICE messages."""
        poll = Poll({tp: batch[-1].offset + 1 for tp, batch in records.items() if batch})
        self.read_until.update(poll.offsets)
        good, outgoing, sequences = poll.good, poll.outgoing, poll.sequences
        now = datetime.now(UTC)
        now_ns = timestamp_ns(now)
        check, origin_of = self._checker.check, self._origins.of
        slice_left = PREPARE_SLICE
        for batch in records.values():
            for record in batch:
                slice_left -= 1
                if not slice_left:
                    slice_left = PREPARE_SLICE
                    await asyncio.sleep(0)
                try:
                    result = check(record.value, now, now_ns, origin_of(record.headers))
                    if isinstance(result, Rejection):
                        outgoing.append(self.dead_letter(record, result))
                        continue
                    if result.lines and self._conflicts(result):
                        outgoing.append(self.dead_letter(record, _conflict(result)))
                        if self._sequences:
                            sequences.append(self._sequence(record, result, conflict=True))
                        continue
                    entries = [
                        self.dead_letter(record, bad.rejection, bad.value, bad.index)
                        for bad in result.bad
                    ]
                    sequence = self._sequence(record, result) if self._sequences else None
                except Exception as exc:  # whatever one message does, the writer goes on
                    outgoing.append(self.dead_letter(record, internal_error(exc)))
                    continue
                outgoing += entries
                if sequence is not None:
                    sequences.append(sequence)
                if result.lines:  # one line per good reading
                    good.append(Good(record, result))
        return poll

    def remember(self, record: Any) -> None:
        """Let a message stored by an earlier process into the duplicate window: checked as
        the live path checks it, nothing logged, counted or sent (it was handled then)."""
        now = datetime.now(UTC)
        try:
            result = self._checker.check(
                record.value, now, timestamp_ns(now), self._origins.of(record.headers)
            )
        except Exception:  # the live path dead-lettered it: nothing of it was stored
            return
        if isinstance(result, Rejection) or not result.lines:
            return
        self.digests.see(result.gateway_id, result.session_id, result.seq, result.lines)

    def _conflicts(self, checked: Checked) -> bool:
        seen = self.digests.see(checked.gateway_id, checked.session_id, checked.seq, checked.lines)
        return seen is Seen.CONFLICT

    def dead_letter(
        self,
        record: Any,
        rejection: Rejection,
        value: bytes | None = None,
        reading_index: int | None = None,
    ) -> Outgoing:
        """The DLQ entry for a raw message, or for one reading of it (`value`, `reading_index`)."""
        source = kafka_source(record.topic, record.partition, record.offset)
        self._rejections.rejected(rejection, source)
        headers = dlq_headers(list(record.headers or ()), rejection, source)
        if reading_index is not None:
            headers.append((HEADER_DLQ_READING_INDEX, str(reading_index).encode()))
        if value is None:
            value = record.value if record.value is not None else b""
        return Outgoing(self.topics.telemetry_dlq, record.key, value, headers, rejection, source)

    def normalized(self, item: Good) -> Outgoing:
        checked = item.checked
        machine = item.record.key  # plant/machine, as the bridge keyed the raw batch
        if not machine:
            asset = checked.readings[0]["asset"]
            machine = f"{asset['plant']}/{asset['machine']}".encode()
        plant = checked.plant or machine.decode(errors="replace").split("/", 1)[0]
        # Re-keyed by gateway: co-partitioned with gateway.status and telemetry.completeness.
        key = gateway_key(plant, checked.gateway_id)
        headers = list(item.record.headers or ())
        if self.registry is not None:
            headers.append((HEADER_REGISTRY_VERSION, self.registry.version.encode()))
            machine_class = self._machine_class(machine)
            if machine_class is not None:
                headers.append((HEADER_MACHINE_CLASS, machine_class))
        # Unchanged batches travel as they came: re-encoding costs more than validating.
        value = checked.to_json() if checked.changed else item.record.value
        record = item.record
        source = kafka_source(record.topic, record.partition, record.offset)
        return Outgoing(self.topics.telemetry_normalized, key, value, headers, source=source)

    def _machine_class(self, key: bytes) -> bytes | None:
        """The registry's class of the machine a `plant/machine` key names, remembered per key
        (a writer sees the same few thousand machines over and over)."""
        try:
            return self._classes[key]
        except KeyError:
            pass
        assert self.registry is not None
        plant, _, machine = key.decode(errors="replace").partition("/")
        found = self.registry.machine_class(plant, machine)
        if len(self._classes) >= MACHINE_CACHE_SIZE:
            self._classes.clear()
        self._classes[key] = encoded = None if found is None else found.encode()
        return encoded

    def _sequence(self, record: Any, checked: Checked, *, conflict: bool = False) -> Outgoing:
        plant = checked.plant
        if plant is None:
            key = (record.key or b"").decode(errors="replace")
            plant = key.split("/", 1)[0] if key and "/" in key else UNKNOWN_PLANT
        seq = SeqRecord(
            plant, checked.gateway_id, checked.session_id, checked.seq, checked.received, conflict
        )
        return Outgoing(self.topics.telemetry_sequences, seq.key, seq.to_bytes(), [])
