"""What every alert EventSink (alerting/sinks) must do, as one test class each sink subclasses
(the way FastStream's tests/brokers/base is run per broker).

A subclass provides the `sink` fixture (a fresh, unstarted sink on something of this test's own)
and `read_back(count)`: what a reader of that sink finds, in order (log records, lines of the
alert log, records of the Kafka topic), each as `seen_as(event)` says a published event looks
there. The base class is not collected (no Test prefix); each subclass is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from alerting.sinks import EventSink
from plantmesh.contracts import AlertEvent, AlertEventKind, AssetPath, Evidence, Severity

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(n: int, kind: str = "raised") -> AlertEvent:
    """Alert number `n` of one rule on one press (a raised and a cleared event share an id)."""
    return AlertEvent(
        alert_id=f"id{n}",
        kind=AlertEventKind(kind),
        issue_type="bearing-overtemperature",
        rule="bearing-overtemp",
        rule_version="0123456789ab",
        machine_class="press",
        asset=AssetPath.parse("plant-a/stamping/line1/press-01"),
        signal="bearing_temp",
        severity=Severity.HIGH,
        at=T0,
        evidence=Evidence(summary=f"summary {n}", condition="value > 90.0 for >= 5.0 s"),
    )


class EventSinkContract:
    deduplicates: ClassVar[bool] = False
    """True if publishing the same events again leaves them there once. No sink does today: a
    redelivered event is there twice, with the same alert_id, for readers to drop."""

    @pytest.fixture
    def sink(self) -> EventSink:
        """A new sink, not started, writing somewhere of this test's own."""
        raise NotImplementedError

    async def read_back(self, count: int) -> list[Any]:
        """Everything the sink has made durable so far, oldest first; waits (with a deadline) for
        at least `count` entries where the medium needs waiting."""
        raise NotImplementedError

    def seen_as(self, event: AlertEvent) -> Any:
        """What `event` looks like in `read_back` (by default: the whole event, decoded)."""
        return event

    def seen(self, *events: AlertEvent) -> list[Any]:
        return [self.seen_as(e) for e in events]

    # --- the contract -------------------------------------------------------------------------
    def test_has_a_name(self, sink: EventSink) -> None:
        assert isinstance(sink.name, str)
        assert sink.name

    async def test_published_events_are_durable_when_publish_returns(self, sink: EventSink) -> None:
        await sink.start()
        try:
            await sink.publish([event(1), event(1, "cleared")])
            # Before close: offsets are committed after publish returned, so it must be there.
            assert await self.read_back(2) == self.seen(event(1), event(1, "cleared"))
        finally:
            await sink.close()

    async def test_publishing_no_events_is_harmless(self, sink: EventSink) -> None:
        await sink.start()
        try:
            await sink.publish([])
            await sink.publish([event(1)])
            assert await self.read_back(1) == self.seen(event(1))
        finally:
            await sink.close()

    async def test_publishing_the_same_events_again_is_harmless(self, sink: EventSink) -> None:
        # What the fan-out does after another sink failed, and a restart after a crash does.
        await sink.start()
        try:
            await sink.publish([event(1), event(2)])
            await sink.publish([event(1), event(2)])
            once = self.seen(event(1), event(2))
            expected = once if self.deduplicates else once + once
            assert await self.read_back(len(expected)) == expected
        finally:
            await sink.close()

    async def test_close_then_start_again_publishes_on(self, sink: EventSink) -> None:
        await sink.start()
        await sink.publish([event(1)])
        await sink.close()
        await sink.start()
        try:
            await sink.publish([event(2)])
            assert await self.read_back(2) == self.seen(event(1), event(2))
        finally:
            await sink.close()

    async def test_close_twice_and_close_unstarted_are_harmless(self, sink: EventSink) -> None:
        await sink.close()  # the service closes every sink it started, some never were
        await sink.start()
        await sink.close()
        await sink.close()

    async def test_publish_without_start_starts_it(self, sink: EventSink) -> None:
        try:
            await sink.publish([event(3)])
            assert await self.read_back(1) == self.seen(event(3))
        finally:
            await sink.close()
