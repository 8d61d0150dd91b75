"""Why did this alert fire: its logged events, its rule, and a replay of its input through a
fresh engine with only that rule, traced step by step and compared byte for byte.

Decisions are pure functions of the readings and the rule version, so replaying the readings the
service saw reproduces the alert exactly. The replay keeps only the alert's asset (its rule's
signals and the gate signal); every other reading only moves event time on, as it did in the
service, so time-decided conditions (an on-delay, a silence) complete at the same ticks. It
starts `history_s` of the rule (default DEFAULT_HISTORY_S) before the episode's earliest known
time (its events, evidence points and time parameters) and stops once event time has passed
the last logged event."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from aiokafka import TopicPartition

from alerting.backtest import Item, _merged, _offset_ranges, read_jsonl, read_kafka
from alerting.catalogue import load_catalogue
from alerting.config import AlertingConfig
from alerting.engine import Engine
from alerting.explain_trace import Recorder
from alerting.rules import RuleConfig, build_rule
from plantmesh.contracts import (
    AlertEvent,
    DecodeError,
    Reading,
    ReadingBatch,
    decode,
    encode,
    is_transition,
)
from plantmesh.kafka.clients import make_consumer, start_client

DEFAULT_HISTORY_S = 600.0
KAFKA_RECORD_SLACK_S = 300.0
"""Records are timed when sent, after their readings: read this far past the end, by record
time (the replay itself stops by event time)."""


class ExplainError(Exception):
    """Something that stops an explanation: a usage or configuration problem (exit 2)."""


@runtime_checkable
class HasHistory(Protocol):
    @property
    def history_s(self) -> float: ...


# --- the alert ----------------------------------------------------------------------------------
def events_of(events: Iterable[AlertEvent], alert_id: str) -> list[AlertEvent]:
    """The events of `alert_id`, in order, exact duplicates (at-least-once delivery) dropped."""
    seen: set[bytes] = set()
    found = []
    for event in events:
        data = encode(event)
        if event.alert_id == alert_id and data not in seen:
            seen.add(data)
            found.append(event)
    return found


def read_alert_log(path: Path) -> Iterator[AlertEvent]:
    """The events of an alert log (JSON lines of AlertEvent); undecodable lines are skipped."""
    with path.open("rb") as file:
        for line in file:
            if line.strip():
                try:
                    yield decode(AlertEvent, line)
                except DecodeError:
                    continue


async def read_alert_topic(config: AlertingConfig, topic: str) -> list[AlertEvent]:
    """Every decodable event on the alert topic, merged by record time, without a group."""
    consumer = make_consumer(config.kafka, "explain", group_id=None)
    await start_client(consumer)
    events = []
    try:
        ranges: dict[TopicPartition, tuple[int, int]] = await _offset_ranges(
            consumer, config.kafka, topic, None, None
        )
        async for record in _merged(consumer, ranges, 30.0):
            if is_transition(record.headers):
                continue  # the lifecycle's records share the topic
            try:
                events.append(decode(AlertEvent, record.value or b""))
            except DecodeError:
                continue
    finally:
        await consumer.stop()
    return events


def find_rule(config: AlertingConfig, event: AlertEvent) -> RuleConfig:
    for rule in config.rules:
        if rule.name == event.rule:
            return rule
    known = ", ".join(rule.name for rule in config.rules)
    raise ExplainError(f"rule {event.rule!r} is not in the configuration (it has: {known})")


def _parse_time(text: str) -> datetime | None:
    if not (len(text) >= 20 and text[4] == "-" and text[10] == "T"):
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def earliest(events: list[AlertEvent]) -> datetime:
    """The earliest time the events know of their episode: event times, evidence points and
    parameters that are times (a first crossing, a last reading, a baseline's start)."""
    times = [event.at for event in events]
    for event in events:
        times.extend(point.ts for point in event.evidence.points)
        texts = (v for v in event.evidence.parameters.values() if isinstance(v, str))
        times.extend(t for t in map(_parse_time, texts) if t is not None)
    return min(times)


def history_s(rule: object) -> float:
    return rule.history_s if isinstance(rule, HasHistory) else DEFAULT_HISTORY_S


# --- the replay ---------------------------------------------------------------------------------
@dataclass
class Replay:
    """A fresh engine with only the alert's rule, fed as the service feeds its engine."""

    config: AlertingConfig
    rule_config: RuleConfig
    alert: AlertEvent
    end: datetime
    """Stop once event time has passed this (the last logged event)."""
    engine: Engine = field(init=False)
    recorder: Recorder = field(init=False)
    events: list[AlertEvent] = field(default_factory=list)
    batches: int = 0
    readings: int = 0
    others: int = 0
    first_ts: datetime | None = None

    def __post_init__(self) -> None:
        rule = build_rule(self.rule_config, load_catalogue(self.config.catalogue))
        gate = self.rule_config.gate
        gates = () if gate is None else (gate.signal,)
        self.engine = Engine([rule], gates=gates, lateness_s=self.config.lateness_s)
        self._signals = rule.signals | set(gates)
        self.recorder = Recorder(rule, f"{self.alert.asset.key}/{self.alert.signal}")

    @property
    def done(self) -> bool:
        watermark = self.engine.watermark
        return watermark is not None and watermark >= self.end

    def feed(self, batch: ReadingBatch, machine_class: str | None) -> None:
        self.batches += 1
        for reading in batch.readings:
            self._process(reading, machine_class)
        self.advance()

    def advance(self, watermark: datetime | None = None) -> None:
        reached = watermark or self.engine.watermark
        if reached is not None:
            self.recorder.tick(reached, lambda: self.events.extend(self.engine.advance(reached)))

    def _process(self, reading: Reading, machine_class: str | None) -> None:
        if self.first_ts is None or reading.source_ts < self.first_ts:
            self.first_ts = reading.source_ts
        if reading.asset.key != self.alert.asset.key or reading.signal not in self._signals:
            self.others += 1
            newest = self.engine.newest
            if newest is None or reading.source_ts > newest:
                self.engine.newest = reading.source_ts  # event time, as all readings move it
            return
        self.readings += 1
        decide = partial(self._decide, reading, machine_class)
        if reading.signal == self.alert.signal:
            self.recorder.reading(reading, decide)
        else:
            decide()

    def _decide(self, reading: Reading, machine_class: str | None) -> None:
        self.events.extend(self.engine.process(reading, machine_class))

    def of_alert(self) -> list[AlertEvent]:
        return events_of(self.events, self.alert.alert_id)

    def of_series(self) -> list[AlertEvent]:
        key = (self.alert.asset.key, self.alert.signal)
        return [e for e in self.events if (e.asset.key, e.signal) == key]


def replay_items(replay: Replay, items: Iterable[Item], since: datetime | None = None) -> None:
    """Feed `items` (from `since` in source time, when given) until event time passes the
    end, then advance once more, as a backtest ends."""
    for batch, machine_class in items:
        if since is not None and all(r.source_ts < since for r in batch.readings):
            continue
        replay.feed(batch, machine_class)
        if replay.done:
            return
    replay.advance()


def replay_file(replay: Replay, path: Path, since: datetime) -> None:
    replay_items(replay, read_jsonl(path), since)


async def replay_kafka(replay: Replay, topic: str, since: datetime) -> None:
    until = replay.end + timedelta(seconds=replay.config.lateness_s + KAFKA_RECORD_SLACK_S)
    async for batch, machine_class in read_kafka(replay.config, topic, since, until):
        if not replay.done:  # read to the end all the same: the reader then closes itself
            replay.feed(batch, machine_class)
    if not replay.done:
        replay.advance()


def evidence_items(events: list[AlertEvent], rule: RuleConfig) -> list[Item]:
    """The evidence points of the events as readings, one batch each (with the gate open just
    before each when the rule is gated): an approximation of the input, not the input."""
    first = events[0]
    points = sorted({p.ts: p.value for e in events for p in e.evidence.points}.items())
    items: list[Item] = []
    for seq, (ts, value) in enumerate(points):
        readings = []
        if rule.gate is not None:
            gate_ts = ts - timedelta(microseconds=1)
            readings.append(_reading(first, rule.gate.signal, rule.gate.equals, gate_ts))
        readings.append(_reading(first, first.signal, value, ts))
        batch = ReadingBatch(
            gateway_id="evidence", session_id="evidence", seq=seq, sent_at=ts, readings=readings
        )
        items.append((batch, first.machine_class))
    return items


def _reading(event: AlertEvent, signal: str, value: float | bool | str, ts: datetime) -> Reading:
    return Reading(asset=event.asset, signal=signal, value=value, source_ts=ts, gateway_ts=ts)


# --- the verdict --------------------------------------------------------------------------------
def flatten(data: Any, path: str = "") -> dict[str, Any]:
    """`evidence.points[3].value`-style paths to the leaves of JSON data."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out |= flatten(value, f"{path}.{key}" if path else str(key))
        return out
    if isinstance(data, list):
        out = {f"{path}.length": len(data)}
        for index, value in enumerate(data):
            out |= flatten(value, f"{path}[{index}]")
        return out
    return {path: data}


def differences(logged: AlertEvent, replayed: AlertEvent) -> list[tuple[str, Any, Any]]:
    """(field path, logged value, replayed value) of every field that differs."""
    a = flatten(logged.model_dump(mode="json", exclude_none=True))
    b = flatten(replayed.model_dump(mode="json", exclude_none=True))
    missing = object()
    return [
        (key, a.get(key, missing), b.get(key, missing))
        for key in sorted(a.keys() | b.keys(), key=_field_order(a, b))
        if a.get(key, missing) != b.get(key, missing)
    ]


def _field_order(a: dict[str, Any], b: dict[str, Any]) -> Any:
    order = {key: index for index, key in enumerate([*a, *(k for k in b if k not in a)])}
    return order.__getitem__


@dataclass(frozen=True)
class Verdict:
    exact: bool
    index: int | None = None
    """The first event that differs (None: reproduced, or one list is a prefix of the other)."""
    fields: list[tuple[str, Any, Any]] = field(default_factory=list)


def _decision(event: AlertEvent) -> AlertEvent:
    """The event without the gateway it names: where the data came through, not what decided
    (a replay from a file does not know it)."""
    return event.model_copy(update={"gateway_id": None})


def compare(logged: list[AlertEvent], replayed: list[AlertEvent]) -> Verdict:
    """Exact when the replayed events of the alert equal the logged ones, encode() bytes (the
    gateway they name aside)."""
    for index, (a, b) in enumerate(
        zip(map(_decision, logged), map(_decision, replayed), strict=False)
    ):
        if encode(a) != encode(b):
            return Verdict(False, index, differences(a, b))
    if len(logged) != len(replayed):
        return Verdict(False, min(len(logged), len(replayed)))
    return Verdict(True)
