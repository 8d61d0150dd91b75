"""What the bridge does with a record batch Kafka refuses, against a stand-in MQTT session and a
producer that refuses batches over a size per topic: each message is tried alone, one too large
goes to the DLQ, and a DLQ entry too large even alone is dropped, counted and acked."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from ingest.bridge import Bridge
from ingest.config import IngestConfig
from plantmesh.config import validate_config
from plantmesh.contracts import AssetPath
from plantmesh.dead_letters import header
from plantmesh.topics import HEADER_DLQ_REASON, HEADER_DLQ_SOURCE, DlqReason, Topics
from tests.support.kafka import FakeBatch
from tests.support.waiting import async_wait_for

TOPICS = Topics("ns")
READINGS = TOPICS.mqtt_readings(AssetPath(plant="p1", area="a", line="l", machine="m7"))
RECEIVED_AT = "2026-01-01T00:00:00.000Z"


class FakeSession:
    """Stands in for the bridge's PahoSession: `deliver` hands the bridge a message; `acked`
    holds the packet ids the bridge acked."""

    def __init__(
        self,
        conn: Any,
        *,
        on_message: Callable[[str, bytes, int, int, str, int, bool], None],
        on_connected: Callable[[], None],
        on_subscribed: Callable[[], None],
        **settings: Any,
    ) -> None:
        self.on_message = on_message
        self.on_connected = on_connected
        self.on_subscribed = on_subscribed
        self.connection = 1
        self.connected = True
        self.acked: list[int] = []

    async def run(self) -> None:
        self.on_connected()
        self.on_subscribed()
        await asyncio.Event().wait()  # until cancelled

    def deliver(self, topic: str, payload: bytes, mid: int, *, retained: bool = False) -> None:
        self.on_message(topic, payload, mid, 1, RECEIVED_AT, self.connection, retained)

    def ack(self, message: Any) -> bool:
        self.acked.append(message.mid)
        return True

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def stop_taking(self) -> None:
        pass

    def disconnect(self) -> None:
        self.connected = False


class _Batch(FakeBatch):
    """A FakeBatch that keeps each message's headers too."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[list[tuple[str, bytes]]] = []

    def append(
        self,
        *,
        timestamp: int | None,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]],
    ) -> bool | None:
        taken = super().append(timestamp=timestamp, key=key, value=value, headers=headers)
        if taken:
            self.headers.append(headers)
        return taken


class SizeLimitedProducer:
    """Refuses a record batch whose values add up to more than its topic's limit, as Kafka
    refuses one over the topic's `max.message.bytes`; acknowledges the others at once."""

    def __init__(self, limits: dict[str, int]) -> None:
        self.limits = limits
        self.accepted: list[tuple[str, _Batch]] = []
        self.refused = 0
        self.down = False

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def flush(self) -> None:
        return None

    async def send(self, topic: str, *args: Any, **kwargs: Any) -> asyncio.Future[None]:
        raise AssertionError("the bridge sends record batches")

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_batch(
        self, batch: _Batch, topic: str, *, partition: int
    ) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.down:
            future.set_exception(KafkaConnectionError("broker down"))
        elif sum(map(len, batch.values)) > self.limits.get(topic, 1 << 30):
            self.refused += 1
            future.set_exception(MessageSizeTooLargeError("the batch is too large"))
        else:
            self.accepted.append((topic, batch))
            future.set_result(None)
        return future

    def values(self, topic: str) -> list[bytes]:
        return [value for t, batch in self.accepted if t == topic for value in batch.values]


def _config() -> IngestConfig:
    return validate_config(
        IngestConfig,
        {
            "namespace": "ns",
            "kafka_topics": {"create": False},
            "backoff": {"initial_s": 0.01, "max_s": 0.05},
        },
    )


@asynccontextmanager
async def running(
    producer: SizeLimitedProducer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Bridge, FakeSession]]:
    sessions: list[FakeSession] = []

    def session(*args: Any, **kwargs: Any) -> FakeSession:
        sessions.append(FakeSession(*args, **kwargs))
        return sessions[-1]

    monkeypatch.setattr("ingest.bridge.service.PahoSession", session)
    bridge = Bridge(_config(), producer_factory=lambda: producer)
    task = asyncio.create_task(bridge.run(), name="test-bridge")
    try:
        await asyncio.wait_for(bridge.ready.wait(), 10)
        yield bridge, sessions[0]
    finally:
        bridge.stop()
        await asyncio.wait_for(task, 10)


async def _settled(bridge: Bridge, received: int) -> None:
    async def done() -> bool:
        return bridge.stats.received == received and bridge.stats.in_flight == 0

    await async_wait_for(done, 10, f"{received} messages handled")


async def test_a_message_too_large_for_kafka_goes_to_the_dlq_and_the_rest_flows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producer = SizeLimitedProducer({TOPICS.telemetry_raw: 4000})
    big = b"x" * 6000
    async with running(producer, monkeypatch) as (bridge, session):
        session.deliver(READINGS, b"a", 1)
        session.deliver(READINGS, big, 2)  # all three in one batch: refused as a whole
        session.deliver(READINGS, b"b", 3)
        await _settled(bridge, 3)
    assert sorted(session.acked) == [1, 2, 3]
    assert sorted(producer.values(TOPICS.telemetry_raw)) == [b"a", b"b"]
    assert producer.values(TOPICS.telemetry_dlq) == [big]
    [(_, dead)] = [(t, b) for t, b in producer.accepted if t == TOPICS.telemetry_dlq]
    assert header(dead.headers[0], HEADER_DLQ_REASON) == b"kafka_rejected"
    assert header(dead.headers[0], HEADER_DLQ_SOURCE) == f"mqtt:{READINGS}".encode()
    stats = bridge.stats
    assert (stats.forwarded, stats.dlq, stats.dropped) == (2, 1, 0)
    assert stats.dlq_by_reason == {DlqReason.KAFKA_REJECTED: 1}
    assert stats.send_failures == 0
    assert producer.refused == 2  # the batch of three, then the big one alone


async def test_a_dlq_entry_kafka_refuses_alone_is_dropped_counted_and_acked(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    producer = SizeLimitedProducer({TOPICS.telemetry_raw: 4000, TOPICS.telemetry_dlq: 4000})
    caplog.set_level(logging.ERROR, logger="ingest.bridge")
    async with running(producer, monkeypatch) as (bridge, session):
        session.deliver(READINGS, b"x" * 6000, 1)  # too large for raw, then for the DLQ
        await _settled(bridge, 1)
        session.deliver("elsewhere/topic", b"y" * 6000, 2)  # foreign: its DLQ entry too large
        session.deliver(READINGS, b"z" * 6000, 3)
        await _settled(bridge, 3)
        assert session.acked == [1, 2, 3]  # not resent by the broker until the bridge stops
    stats = bridge.stats
    assert (stats.forwarded, stats.dlq, stats.dropped) == (0, 0, 3)
    assert stats.send_failures == 0
    assert stats.left_to_broker == 0
    assert producer.accepted == []
    dropped = [r for r in caplog.records if "dropped" in r.getMessage()]
    # Logged once a reason: kafka_rejected, then foreign_topic.
    assert [r.levelno for r in dropped] == [logging.ERROR, logging.ERROR]
    assert "kafka_rejected" in dropped[0].getMessage()
    assert "foreign_topic" in dropped[1].getMessage()


async def test_a_kafka_outage_is_retried_without_acking(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = SizeLimitedProducer({})
    producer.down = True
    async with running(producer, monkeypatch) as (bridge, session):
        session.deliver(READINGS, b"a", 1)

        async def failed_twice() -> bool:
            return bridge.stats.send_failures >= 2

        await async_wait_for(failed_twice, 10, "the send retried")
        assert session.acked == []
        producer.down = False
        await _settled(bridge, 1)
    assert session.acked == [1]
    assert producer.values(TOPICS.telemetry_raw) == [b"a"]
    assert (bridge.stats.forwarded, bridge.stats.dropped) == (1, 0)


# --- what the bridge checks itself (issue 13) -------------------------------------------------
STATUS = TOPICS.mqtt_gateway_status("p1", "gw-1")


def _status(**changes: Any) -> bytes:
    base = {
        "gateway_id": "gw-1",
        "plant": "p1",
        "session_id": "s1",
        "state": "birth",
        "at": "2026-01-01T00:00:00Z",
    }
    return json.dumps(base | changes).encode()


async def test_a_retained_reading_batch_is_acked_and_not_forwarded_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producer = SizeLimitedProducer({})
    async with running(producer, monkeypatch) as (bridge, session):
        session.deliver(READINGS, b"retained", 1, retained=True)
        session.deliver(READINGS, b"live", 2)
        session.deliver(STATUS, _status(), 3, retained=True)  # the last state: still forwarded
        await _settled(bridge, 3)
    assert sorted(session.acked) == [1, 2, 3]
    assert producer.values(TOPICS.telemetry_raw) == [b"live"]
    assert producer.values(TOPICS.gateway_status) == [_status()]
    assert bridge.stats.retained_skipped == 1


async def test_status_messages_are_checked_like_readings(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = SizeLimitedProducer({})
    bad = [
        b"{not json",
        b"",
        _status(state="exploded"),
        _status(at=1767225600),
        _status(gateway_id="gw-2"),  # claims another gateway than its topic
        _status(health={"buffer_depth": "5"}),
    ]
    async with running(producer, monkeypatch) as (bridge, session):
        session.deliver(STATUS, _status(), 1)
        for mid, payload in enumerate(bad, start=2):
            session.deliver(STATUS, payload, mid)
        await _settled(bridge, 1 + len(bad))
    assert producer.values(TOPICS.gateway_status) == [_status()]
    assert sorted(producer.values(TOPICS.telemetry_dlq)) == sorted(bad)
    assert bridge.stats.dlq_by_reason == {
        DlqReason.MALFORMED_JSON: 1,
        DlqReason.EMPTY_PAYLOAD: 1,
        DlqReason.SCHEMA_MISMATCH: 3,
        DlqReason.IDENTITY_MISMATCH: 1,
    }


async def test_an_unexpected_error_sends_the_message_to_the_dlq_and_the_bridge_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(payload: bytes, key: bytes) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("ingest.bridge.routing.check_status", broken)
    producer = SizeLimitedProducer({})
    async with running(producer, monkeypatch) as (bridge, session):
        session.deliver(STATUS, _status(), 1)
        session.deliver(READINGS, b"after", 2)
        await _settled(bridge, 2)
    assert producer.values(TOPICS.telemetry_raw) == [b"after"]
    [(_, dead)] = [(t, b) for t, b in producer.accepted if t == TOPICS.telemetry_dlq]
    assert header(dead.headers[0], HEADER_DLQ_REASON) == b"internal_error"
    assert bridge.stats.dlq_by_reason == {DlqReason.INTERNAL_ERROR: 1}
