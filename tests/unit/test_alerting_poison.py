"""No poison pill in the detection service (no Kafka: a fake consumer, the real engine and
shards): whatever one message holds, it is skipped by reason or evaluated as usual, the
offsets are committed, and the decisions on the good data stay exactly what they are without
it. Also what alerting/poison.py refuses, and that a replay refuses the same."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from alerting import service as service_module
from alerting.backtest import _decoded
from alerting.catalogue import load_catalogue
from alerting.commands import BaselineCommand
from alerting.config import AlertingConfig
from alerting.engine import Engine
from alerting.pipeline import Pipeline
from alerting.poison import event_problem, update_problem
from alerting.service import AlertingService
from plantmesh.contracts import AlertEvent, ReadingBatch, encode
from plantmesh.resilience import ErrorLog
from plantmesh.topics import HEADER_MACHINE_CLASS
from tests.support.alarms import alert_event
from tests.support.poison import Poison, batch, detection_poison, reasons

T0 = datetime(2026, 1, 1, tzinfo=UTC)
Record = ConsumerRecord[bytes, bytes]


def config(tmp_path: Path) -> AlertingConfig:
    return AlertingConfig.model_validate(
        {
            "kafka": {"bootstrap": "127.0.0.1:9"},  # never reached
            "alert_log": str(tmp_path / "alerts.jsonl"),
            "checkpoint_interval_s": 3600,  # no checkpoint during the test
            "rules": [
                {
                    "name": "bearing-overtemp",
                    "type": "threshold",
                    "issue_type": "bearing-overtemperature",
                    "signal": "bearing_temp",
                    "above": 90.0,
                    "on_delay_s": 5.0,
                }
            ],
        }
    )


class Collect:
    name = "collect"

    def __init__(self) -> None:
        self.events: list[AlertEvent] = []

    async def process(self, events: Sequence[AlertEvent]) -> Sequence[AlertEvent]:
        self.events += events
        return events


class FakeConsumer:
    def __init__(self, polls: list[list[Record]]) -> None:
        self.polls = polls
        self.commits = 0

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        records = self.polls.pop(0)
        return {TopicPartition(records[0].topic, 0): records} if records else {}

    async def commit(self) -> None:
        self.commits += 1


def good_batches() -> list[bytes]:
    """press-01 at 95 degC from t=10 to t=25 of 40 s: raised at 15, cleared at 25."""
    made = []
    for t in range(40):
        data = batch(
            t, (T0 + timedelta(seconds=t)).isoformat(), value=95.0 if 10 <= t < 25 else 80.0
        )
        data["gateway_id"] = "gw-1"
        data["readings"][0]["asset"] = {
            "plant": "plant-a", "area": "stamping", "line": "line1", "machine": "press-01"
        }  # fmt: skip
        made.append(encode(ReadingBatch.model_validate(data)))
    return made


MADE: list[AlertingService] = []


@pytest.fixture(autouse=True)
async def _close_services() -> AsyncIterator[None]:
    yield
    while MADE:  # the state store's producer exists from the start, never started here
        await MADE.pop().store.close()


def running(tmp_path: Path, engine: Callable[[], Engine] | None = None) -> AlertingService:
    made = AlertingService(config(tmp_path), engine)
    MADE.append(made)
    made.pipeline = Pipeline([Collect()])
    made.shards.add(0, None)
    made.gate.open()  # no rebalance with a fake consumer: as after taking partition 0 over
    return made


def collected(service: AlertingService) -> list[AlertEvent]:
    stage = service.pipeline.stages[0]
    assert isinstance(stage, Collect)
    return stage.events


def record(service: AlertingService, topic: str, offset: int, poison: Poison | None = None,
           value: bytes | None = None) -> Record:  # fmt: skip
    if poison is not None:
        topic, value = getattr(service.topics, poison.topic), poison.value
    key = b"plant-a/press-01" if poison is None else poison.key
    headers = [] if poison is None else poison.headers
    size = len(value or b"")
    return ConsumerRecord(topic, 0, offset, 0, 0, key, value, None, 0, size, headers)


async def run(service: AlertingService, poisons: list[Poison]) -> FakeConsumer:
    """The good batches in polls of five, the poisons spread between them."""
    normalized = service.topics.telemetry_normalized
    polls: list[list[Record]] = []
    offsets: Counter[str] = Counter()
    for i, value in enumerate(good_batches()):
        if i % 5 == 0:
            polls.append([])
        for poison in poisons[i::40]:
            topic = getattr(service.topics, poison.topic)
            polls[-1].append(record(service, topic, offsets[topic], poison))
            offsets[topic] += 1
        polls[-1].append(record(service, normalized, offsets[normalized], value=value))
        offsets[normalized] += 1
    consumer = FakeConsumer(polls)
    for _ in range(len(polls)):
        await service._poll_once(consumer)  # type: ignore[arg-type]
    return consumer


async def test_poison_between_good_batches_is_skipped_and_changes_no_decision(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clean = running(tmp_path)
    await run(clean, [])
    expected = [(e.kind.value, e.at) for e in collected(clean)]
    assert expected == [
        ("raised", T0 + timedelta(seconds=15)),
        ("cleared", T0 + timedelta(seconds=25)),
    ]

    poisons = detection_poison((T0 + timedelta(seconds=3)).isoformat())
    caplog.set_level(logging.WARNING, logger="alerting.service")
    poisoned = running(tmp_path)
    consumer = await run(poisoned, poisons)

    assert collected(poisoned) == collected(clean)  # the same events, byte for byte
    assert poisoned.stats.skipped == reasons(poisons)
    refused = {"timestamp_out_of_range": 5, "schema_mismatch": 1}  # decoded, yet unusable
    assert poisoned.stats.skipped - poisoned.stats.undecodable == refused
    assert poisoned.stats.readings == clean.stats.readings + 1  # the 200 kB one, evaluated
    assert consumer.commits == 8  # every poll, poison and all
    engines = [s.by_partition[0].engine for s in (clean.shards, poisoned.shards)]
    assert engines[0].newest == engines[1].newest  # event time not moved by any of them
    assert engines[1].rule_errors == 0
    skips = [r for r in caplog.records if r.getMessage().startswith("skipping")]
    assert len(skips) == len(set(reasons(poisons)))  # one line per reason, not per message


async def test_an_exception_evaluating_one_message_skips_only_that_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Buggy(Engine):
        def process_batch(
            self, batch: ReadingBatch, machine_class: str | None = None
        ) -> list[AlertEvent]:
            if batch.gateway_id == "gw-bug":
                raise KeyError("a bug")
            return super().process_batch(batch, machine_class)

    def engine() -> Engine:
        made = config(tmp_path)
        return Buggy.from_config(made.rules, load_catalogue(made.catalogue))

    bug = encode(ReadingBatch.model_validate(batch(1, T0.isoformat(), gateway="gw-bug")))
    poisons = [Poison(f"bug {i}", "telemetry_normalized", bug, "internal_error") for i in range(3)]
    caplog.set_level(logging.WARNING, logger="alerting.service")
    service = running(tmp_path, engine)
    await run(service, poisons)
    assert service.stats.skipped == {"internal_error": 3}
    assert [e.kind.value for e in collected(service)] == ["raised", "cleared"]
    [logged] = [r for r in caplog.records if "internal_error" in r.getMessage()]
    assert "KeyError: 'a bug'" in logged.getMessage()
    assert logged.exc_info is not None  # with its traceback


async def test_a_failing_baseline_command_is_counted_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(engines: object, command: object) -> int:
        raise RuntimeError("a rule's bug")

    monkeypatch.setattr(service_module, "apply", broken)
    service = running(tmp_path)
    command = BaselineCommand(action="reset", rule="r", series="a/b/c/d/s", issued_at=T0)
    await service._command(command)
    assert service.stats.skipped == {"internal_error": 1}
    assert service.shards.by_partition[0].dirty  # it may have changed something: checkpointed


async def test_a_shard_whose_event_time_overflows_does_not_stop_the_others(tmp_path: Path) -> None:
    service = running(tmp_path)
    service.shards.add(1, None)
    broken, fine = service.shards.by_partition[0], service.shards.by_partition[1]
    broken.engine.newest = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)  # an old checkpoint's
    fine.engine.newest = T0
    service.shards.idle_after_s = 0.0
    broken.last_record -= 3600  # idle: its clock would move on past year 9999
    service.shards.advance()
    assert service.shards.advance_errors == 1


def test_a_replay_skips_what_the_service_skips() -> None:
    skipped: Counter[str] = Counter()
    errors = ErrorLog(logging.getLogger("test"), "replay")
    for poison in detection_poison(T0.isoformat()):
        if poison.topic != "telemetry_normalized":
            continue
        value = poison.value or b""
        item = _decoded(
            ConsumerRecord("t", 0, 0, 0, 0, None, value, None, 0, 0, poison.headers),
            skipped,
            errors,
        )
        assert (item is None) == (poison.reason is not None), poison.what
    normalized = [p for p in detection_poison(T0.isoformat()) if p.topic == "telemetry_normalized"]
    assert skipped == reasons(normalized)


def test_a_machine_class_header_that_is_a_name_is_taken() -> None:
    value = encode(ReadingBatch.model_validate(batch(1, T0.isoformat())))
    headers = [(HEADER_MACHINE_CLASS, b"cnc_mill")]
    item = _decoded(
        ConsumerRecord("t", 0, 0, 0, 0, None, value, None, 0, 0, headers),
        Counter(),
        ErrorLog(logging.getLogger("t"), "r"),
    )
    assert item is not None
    assert item[1] == "cnc_mill"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"alert_id": "x" * 64}, None),
        ({"alert_id": "x" * 65}, "schema_mismatch"),
        ({"at": datetime(1677, 12, 31, 23, 59, tzinfo=UTC)}, "timestamp_out_of_range"),
        ({"at": datetime(1678, 1, 1, tzinfo=UTC)}, None),
        ({"at": datetime(2261, 12, 31, 23, 59, tzinfo=UTC)}, None),
        ({"at": datetime(2262, 1, 1, tzinfo=UTC)}, "timestamp_out_of_range"),
    ],
)
def test_what_an_alert_event_may_hold(change: dict[str, Any], reason: str | None) -> None:
    event = alert_event("a1").model_copy(update=change)
    found = event_problem(event)
    assert (found and found.reason) == reason


def test_an_incident_update_whose_alarm_id_is_too_long_is_refused() -> None:
    from alerting.incidents.correlator import Correlator
    from alerting.incidents.policy import Correlation, CorrelationConfig
    from alerting.incidents.updates import to_update
    from plantmesh.fleet import Fleet

    terms = Correlation(min_plants=2, min_machines=2, window_s=1800, hold_s=60)
    correlator = Correlator(CorrelationConfig(version="t", default=terms))
    correlator.on_event(alert_event("a1", plant="plant-a"))
    [change] = correlator.on_event(alert_event("b1", plant="plant-b", machine="mill-02"))
    update = to_update(change, Fleet([]), terms)
    assert update_problem(update) is None
    # incident id "." version: 60 + 1 + 1 characters, beyond the alarm's 64
    found = update_problem(update.model_copy(update={"incident_id": "i" * 60, "version": 1000}))
    assert found is not None
    assert found.reason == "schema_mismatch"
