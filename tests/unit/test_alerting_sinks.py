"""The alert sinks without servers: the EventSink contract for the log and the alert log file
(Kafka's is in tests/integration/test_alerting_kafka_sink.py), and the fan-out to sinks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from alerting.pipeline import FanOut, Pipeline
from alerting.sinks import AlertLogSink, LogSink, SinkError
from plantmesh.contracts import AlertEvent, decode
from plantmesh.resilience import Backoff, StopRequestedError
from tests.support.sink_contract import EventSinkContract, event


class FlakySink:
    """Fails `failures` times, then records what it got."""

    def __init__(self, name: str, failures: int = 0) -> None:
        self.name = name
        self.failures = failures
        self.attempts = 0
        self.published: list[AlertEvent] = []

    async def start(self) -> None:
        pass

    async def publish(self, events: Sequence[AlertEvent]) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise SinkError(f"{self.name} down")
        self.published.extend(events)

    async def close(self) -> None:
        pass


def fast() -> Backoff:
    return Backoff(initial_s=0.001, max_s=0.005)


async def test_fan_out_retries_only_the_failing_sink() -> None:
    good, flaky = FlakySink("good"), FlakySink("flaky", failures=2)
    pipeline = Pipeline([FanOut([good, flaky], asyncio.Event(), backoff=fast)])
    await pipeline.process([event(1)])
    assert good.published == [event(1)]
    assert good.attempts == 1
    assert flaky.published == [event(1)]
    assert flaky.attempts == 3


async def test_fan_out_gives_up_when_stopping() -> None:
    stopping = asyncio.Event()
    stopping.set()
    down = FlakySink("down", failures=10**6)
    with pytest.raises(StopRequestedError):
        await FanOut([down], stopping, backoff=fast).process([event(1)])
    assert down.published == []


async def test_fan_out_still_delivers_to_working_sinks_when_stopping() -> None:
    stopping = asyncio.Event()
    stopping.set()
    sink = FlakySink("up")
    assert await FanOut([sink], stopping, backoff=fast).process([event(1)]) == [event(1)]
    assert sink.published == [event(1)]


async def test_pipeline_skips_stages_when_there_are_no_events() -> None:
    sink = FlakySink("s")
    await Pipeline([FanOut([sink], asyncio.Event())]).process([])
    assert sink.attempts == 0


class TestLogSink(EventSinkContract):
    @pytest.fixture
    def sink(self, caplog: pytest.LogCaptureFixture) -> LogSink:
        caplog.set_level(logging.INFO, logger="alerting.events")
        self.caplog = caplog
        return LogSink()

    async def read_back(self, count: int) -> list[Any]:
        records = [r for r in self.caplog.records if r.name == "alerting.events"]
        # alert_id and severity are the `extra` of each record
        return [(vars(r)["alert_id"], vars(r)["severity"], r.getMessage()) for r in records]

    def seen_as(self, event: AlertEvent) -> Any:
        line = f"alert {event.kind.value} {event.rule} {event.asset.key}/{event.signal}"
        return (event.alert_id, event.severity.value, f"{line}: {event.evidence.summary}")

    async def test_writes_one_line_with_the_summary(self, sink: LogSink) -> None:
        await sink.publish([event(7)])
        [record] = self.caplog.records
        assert (
            "raised bearing-overtemp plant-a/stamping/line1/press-01/bearing_temp" in record.message
        )
        assert "summary 7" in record.message
        assert "\n" not in record.getMessage()


class TestAlertLogSink(EventSinkContract):
    @pytest.fixture
    def sink(self, tmp_path: Path) -> AlertLogSink:
        self.path = tmp_path / "sub" / "alerts.jsonl"  # a directory it must create
        return AlertLogSink(self.path)

    async def read_back(self, count: int) -> list[Any]:
        if not self.path.exists():
            return []
        # One event per line: each line must decode on its own.
        return [decode(AlertEvent, line) for line in self.path.read_bytes().splitlines()]

    async def test_a_new_sink_on_the_same_file_appends(self, sink: AlertLogSink) -> None:
        await sink.start()
        await sink.publish([event(1), event(1, "cleared")])
        # Flushed per event: readable before close.
        assert len(self.path.read_bytes().splitlines()) == 2
        await sink.close()
        again = AlertLogSink(self.path)
        await again.start()
        await again.publish([event(2)])
        await again.close()
        assert await self.read_back(3) == [event(1), event(1, "cleared"), event(2)]

    async def test_a_file_that_cannot_be_opened_is_a_sink_error(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("")
        with pytest.raises(SinkError, match="cannot open alert log"):
            await AlertLogSink(blocker / "alerts.jsonl").start()
