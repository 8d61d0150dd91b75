from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerting.pipeline import FanOut, Pipeline
from alerting.sinks import AlertLogSink, LogSink, SinkError
from plantmesh.contracts import AlertEvent, AssetPath, Evidence, decode
from plantmesh.resilience import Backoff, StopRequestedError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(n: int, kind: str = "raised") -> AlertEvent:
    return AlertEvent(
        alert_id=f"id{n}",
        kind=kind,
        rule="bearing-overtemp",
        asset=AssetPath.parse("plant-a/stamping/line1/press-01"),
        signal="bearing_temp",
        severity="high",
        at=T0,
        evidence=Evidence(summary=f"summary {n}", condition="value > 90.0 for >= 5.0 s"),
    )


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


async def test_alert_log_is_one_event_per_line_and_appends_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "alerts.jsonl"
    sink = AlertLogSink(path)
    await sink.start()
    await sink.publish([event(1), event(1, "cleared")])
    # Flushed per event: readable before close.
    assert len(path.read_bytes().splitlines()) == 2
    await sink.close()
    again = AlertLogSink(path)
    await again.start()
    await again.publish([event(2)])
    await again.close()
    lines = path.read_bytes().splitlines()
    assert [decode(AlertEvent, line) for line in lines] == [event(1), event(1, "cleared"), event(2)]


async def test_alert_log_that_cannot_be_opened_is_a_sink_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SinkError, match="cannot open alert log"):
        await AlertLogSink(blocker / "alerts.jsonl").start()


async def test_log_sink_writes_one_line_with_the_summary(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="alerting.events"):
        await LogSink().publish([event(7)])
    [record] = caplog.records
    assert "raised bearing-overtemp plant-a/stamping/line1/press-01/bearing_temp" in record.message
    assert "summary 7" in record.message
    assert "\n" not in record.getMessage()


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
