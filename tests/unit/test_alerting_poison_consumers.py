"""No poison pill in the alarm service's intake and the incident stage's two loops (fakes for the
database, Kafka's consumer and producer): poison is skipped by reason and logged once per kind,
the good records around it go through, a passing failure (the database away) is handed back to
be retried rather than skipped, and a record Kafka refuses as too large is left out rather than
retried forever."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from sqlalchemy import exc as sa

from alerting.alarm_service.intake import Intake
from alerting.incidents import rekey as rekey_module
from alerting.incidents.correlate import Correlate
from alerting.incidents.correlator import MAX_SUMMARY_CHARS, Correlator
from alerting.incidents.partitions import Partition
from alerting.incidents.plumbing import Retrier, send_fitting
from alerting.incidents.policy import Correlation, CorrelationConfig
from alerting.incidents.rekey import Rekey
from alerting.incidents.stage_config import IncidentsConfig
from alerting.incidents.stats import StageStats
from alerting.incidents.updates import to_update
from plantmesh.contracts import (
    ALARM_TRANSITION_CONTRACT,
    CONTRACT_HEADER,
    AlertEvent,
    Evidence,
    IncidentUpdate,
    encode,
)
from plantmesh.fleet import Fleet
from plantmesh.topics import Topics
from tests.support.alarms import T0, alert_event
from tests.support.poison import alert_event_poison, incident_update_poison, reasons

TERMS = Correlation(min_plants=2, min_machines=2, window_s=1800, hold_s=60)
POLICY = CorrelationConfig(version="t", default=TERMS)
TOPICS = Topics("t")
Record = ConsumerRecord[bytes, bytes]


def record(topic: str, value: bytes | None, offset: int = 0, headers: Any = ()) -> Record:
    return ConsumerRecord(topic, 0, offset, 0, 0, b"k", value, None, 1, len(value or b""), headers)


def opening_update() -> IncidentUpdate:
    correlator = Correlator(POLICY)
    correlator.on_event(alert_event("a1", plant="plant-a"))
    [change] = correlator.on_event(alert_event("b1", plant="plant-b", machine="mill-02"))
    return to_update(change, Fleet([]), TERMS)


# --- the alarm service ----------------------------------------------------------------------------
class FakeStore:
    def __init__(self, failures: dict[str, BaseException] | None = None) -> None:
        self.failures = failures or {}
        self.recorded: list[str] = []

    async def record(self, event: AlertEvent) -> list[object]:
        if event.alert_id in self.failures:
            raise self.failures[event.alert_id]
        self.recorded.append(event.alert_id)
        return []


async def test_the_intake_skips_poison_and_records_what_is_around_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="alerting.alarm_service.intake")
    store = FakeStore()
    intake = Intake(store, TOPICS)  # type: ignore[arg-type]
    events = alert_event_poison(alert_event("p1"))
    updates = incident_update_poison(opening_update())
    for offset, poison in enumerate(events + updates):
        topic = getattr(TOPICS, poison.topic)
        await intake.take(record(topic, poison.value, offset))
        await intake.take(record(topic, poison.value, offset))  # twice: logged once
    await intake.take(record(TOPICS.alert_events, encode(alert_event("good"))))
    assert store.recorded == ["good"]  # the fake has no database: the refused never reach it
    assert intake.skipped == reasons(events + updates) + reasons(events + updates)
    assert intake.bad_events == 2 * (4 + 1)  # those that do not decode: 4 events, 1 update
    assert len(caplog.records) == len(reasons(events + updates))  # one line per reason


def _db_error(kind: type[sa.DBAPIError], sqlstate: str | None) -> sa.DBAPIError:
    class DriverError(Exception):
        pass

    orig = DriverError("from the driver")
    orig.sqlstate = sqlstate  # type: ignore[attr-defined]
    return kind("INSERT ...", {}, orig)


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (_db_error(sa.DBAPIError, "22001"), False),  # value too long for the column
        (_db_error(sa.DBAPIError, "22P02"), False),  # not valid JSON (NaN)
        (_db_error(sa.DataError, "22021"), False),  # a NUL character
        (_db_error(sa.DBAPIError, "54000"), False),  # a program limit
        (sa.StatementError("cannot bind", "INSERT ...", {}, ValueError()), False),
        (ValueError("a bug"), False),
        (sa.InvalidRequestError("a bug"), False),
        (OverflowError("Python int too large to convert to SQLite INTEGER"), False),
        (_db_error(sa.OperationalError, "08006"), True),  # connection lost
        (_db_error(sa.OperationalError, None), True),  # SQLite: database is locked
        (_db_error(sa.IntegrityError, "23505"), True),  # a race with another process
        (_db_error(sa.DBAPIError, "57P01"), True),  # the server shutting down
        (sa.TimeoutError("pool exhausted"), True),
        (sa.DisconnectionError("gone"), True),
        (OSError("connection refused"), True),
        (KafkaConnectionError(), True),
    ],
)
async def test_a_failure_recording_one_event_is_retried_only_when_it_may_pass(
    error: BaseException, retried: bool
) -> None:
    intake = Intake(FakeStore({"a1": error}), TOPICS)  # type: ignore[arg-type]
    taking = intake.take(record(TOPICS.alert_events, encode(alert_event("a1"))))
    if retried:
        with pytest.raises(type(error)):
            await taking
        assert intake.skipped == {}
    else:
        await taking
        assert intake.skipped == {"internal_error": 1}
    assert intake.recorded == 0


# --- the incident stage ---------------------------------------------------------------------------
class FakeProducer:
    """Refuses values over `max_bytes` as Kafka does: at send (the client's own check) or in
    the delivery result (the broker's)."""

    def __init__(self, max_bytes: int = 10_000, at_send: bool = True) -> None:
        self.max_bytes = max_bytes
        self.at_send = at_send
        self.sent: list[tuple[str, bytes]] = []

    async def send(self, topic: str, value: bytes, **kwargs: Any) -> Awaitable[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if len(value) <= self.max_bytes:
            self.sent.append((topic, value))
            future.set_result(None)
        elif self.at_send:
            raise MessageSizeTooLargeError()
        else:
            future.set_exception(MessageSizeTooLargeError())
        return future


class FakeConsumer:
    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self.commits = 0

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        records, self.records = self.records, []
        return {TopicPartition(records[0].topic, 0): records} if records else {}

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(TOPICS.alert_events, 0)}

    async def commit(self, offsets: object = None) -> None:
        self.commits += 1


@pytest.mark.parametrize("at_send", [True, False])
async def test_a_record_too_large_for_kafka_is_left_out_and_the_others_sent(at_send: bool) -> None:
    producer = FakeProducer(max_bytes=10, at_send=at_send)
    records = [(b"k", b"small"), (b"k", b"x" * 11), (b"k", b"small too")]
    refused = await send_fitting(producer, "topic", records)  # type: ignore[arg-type]
    assert refused == [1]
    assert {value for _, value in producer.sent} == {b"small", b"small too"}


@pytest.fixture
def stage() -> tuple[IncidentsConfig, StageStats, Retrier]:
    config = IncidentsConfig.model_validate({"namespace": "t", "kafka": {"bootstrap": "x:9"}})
    stats = StageStats()
    return config, stats, Retrier(asyncio.Event(), config.backoff, logging.getLogger("test"))


async def test_the_rekeying_loop_skips_poison_and_passes_the_rest_on(
    stage: tuple[IncidentsConfig, StageStats, Retrier], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, stats, retry = stage
    real_key = rekey_module.class_key

    def class_key(event: AlertEvent) -> bytes | None:
        if event.alert_id == "boom":
            raise RuntimeError("a bug")
        return real_key(event)

    monkeypatch.setattr(rekey_module, "class_key", class_key)
    loop = Rekey(config, POLICY, stats, asyncio.Event(), retry)
    poisons = alert_event_poison(alert_event("p1"))
    good = [encode(alert_event(f"g{i}", plant=f"plant-{i}")) for i in range(3)]
    huge = alert_event("huge").model_copy(
        update={"evidence": Evidence(summary="s" * 20_000, condition="c")}
    )
    transition = [(CONTRACT_HEADER, ALARM_TRANSITION_CONTRACT.encode())]
    values = [p.value for p in poisons] + [encode(huge), encode(alert_event("boom"))]
    records = [record(TOPICS.alert_events, v, i) for i, v in enumerate(values)]
    records += [record(TOPICS.alert_events, b"{}", 50, transition)]
    records += [record(TOPICS.alert_events, v, 60 + i) for i, v in enumerate(good)]
    consumer, producer = FakeConsumer(records), FakeProducer()
    await loop._poll_once(consumer, producer)  # type: ignore[arg-type]
    assert stats.skipped == reasons(poisons) + Counter(kafka_rejected=1, internal_error=1)
    assert [value for _, value in producer.sent] == good
    assert (stats.rekeyed, stats.transitions, consumer.commits) == (3, 1, 1)


@pytest.fixture
async def correlating(
    stage: tuple[IncidentsConfig, StageStats, Retrier],
) -> AsyncIterator[tuple[Correlate, Partition]]:
    config, stats, retry = stage
    loop = Correlate(config, POLICY, Fleet([]), stats, asyncio.Event(), retry, lambda: T0)
    part = loop.partitions[0] = Partition(0, loop.topic, Correlator(POLICY))
    loop.gate.open()  # as after taking partition 0 over
    yield loop, part
    await loop.store.close()  # its producer exists from the start


async def test_the_correlating_loop_skips_poison_without_touching_the_correlator(
    correlating: tuple[Correlate, Partition], caplog: pytest.LogCaptureFixture
) -> None:
    loop, part = correlating
    caplog.set_level(logging.WARNING, logger="alerting.incidents.correlate")
    real = part.correlator.on_event

    def on_event(event: AlertEvent, arrived: Any = None) -> Any:
        if event.alert_id.startswith("boom"):
            raise RuntimeError("a bug")
        return real(event, arrived)

    part.correlator.on_event = on_event  # type: ignore[method-assign]
    poisons = alert_event_poison(alert_event("p1"), topic="alerts_by_class")
    for offset, poison in enumerate(poisons):
        assert loop._correlate(part, record(loop.topic, poison.value, offset)) == []
    assert part.correlator.groups == {}  # none of them reached it
    for offset, boom in enumerate(("boom1", "boom2"), 100):
        assert loop._correlate(part, record(loop.topic, encode(alert_event(boom)), offset)) == []
    a1, b1 = alert_event("a1"), alert_event("b1", plant="plant-b", machine="mill-02")
    assert loop._correlate(part, record(loop.topic, encode(a1), 200)) == []
    [opened] = loop._correlate(part, record(loop.topic, encode(b1), 201))
    assert [m.alert_id for m in opened.members] == ["a1", "b1"]
    assert loop.stats.skipped == reasons(poisons) + Counter(internal_error=2)
    assert loop.stats.correlator_errors == 2
    booms = [r for r in caplog.records if "RuntimeError" in r.getMessage()]
    assert len(booms) == 1  # once per kind, with its traceback
    assert booms[0].exc_info is not None


async def test_a_correlator_failing_to_close_incidents_is_logged_once_and_retried(
    correlating: tuple[Correlate, Partition], caplog: pytest.LogCaptureFixture
) -> None:
    loop, part = correlating
    caplog.set_level(logging.WARNING, logger="alerting.incidents.correlate")

    def advance(now: Any) -> Any:
        raise OverflowError("date value out of range")

    part.correlator.advance = advance  # type: ignore[method-assign]
    for _ in range(3):
        loop._last_tick = -1e9  # every call is a tick
        assert loop._tick([]) == []
    assert loop.stats.correlator_errors == 3
    assert len([r for r in caplog.records if "closing incidents" in r.getMessage()]) == 1


async def test_an_update_too_large_for_kafka_is_dropped_and_the_others_published(
    correlating: tuple[Correlate, Partition],
) -> None:
    loop, _ = correlating
    update = opening_update()
    huge = update.model_copy(update={"incident_id": "big", "explanation": {"text": "t" * 20_000}})
    loop._producer = FakeProducer()  # type: ignore[assignment]
    await loop._publish([huge, update])
    assert loop.stats.skipped == {"kafka_rejected": 1}
    assert loop.stats.updates == Counter({"opened": 1})


def test_a_members_summary_is_cut_so_its_incidents_updates_stay_small() -> None:
    correlator = Correlator(POLICY)
    long = alert_event("a1").model_copy(
        update={"evidence": Evidence(summary="s" * 900_000, condition="c")}
    )
    correlator.on_event(long)
    b1 = alert_event("b1", plant="plant-b", machine="mill-02", at=timedelta(minutes=1).seconds)
    [change] = correlator.on_event(b1)
    summaries = [m.summary for m in change.incident.members.values()]
    assert [len(s) for s in summaries] == [MAX_SUMMARY_CHARS, len("b1 raised")]
    assert len(encode(to_update(change, Fleet([]), TERMS))) < 10_000
