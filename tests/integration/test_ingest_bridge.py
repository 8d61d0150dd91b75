"""The bridge against real Mosquitto and Kafka: forwarding, persistent sessions, DLQ, and no ack
before Kafka acknowledged."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from aiokafka.errors import KafkaConnectionError

from ingest.bridge import Bridge
from ingest.config import IngestConfig
from plantmesh.contracts import (
    GatewayState,
    GatewayStatus,
    encode,
)
from plantmesh.topics import (
    HEADER_DLQ_REASON,
    HEADER_DLQ_SOURCE,
    HEADER_MQTT_TOPIC,
    HEADER_RECEIVED_AT,
    Topics,
)
from tests.support.ingest import (
    ASSET,
    BRIDGE_T0,
    batch_payload,
    bridge_config,
    bridge_running,
    forget_session,
    publish,
)
from tests.support.kafka import FakeBatch, consume, create_small_topic
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def client_ids(namespace: str, mqtt_url: str) -> Iterator[list[str]]:
    """Bridge client ids this test uses; their persistent sessions are removed afterwards."""
    ids = [f"{namespace}-bridge"]
    yield ids
    for client_id in ids:
        forget_session(mqtt_url, client_id)


@pytest.fixture
def config(
    namespace: str, mqtt_url: str, kafka_bootstrap: str, client_ids: list[str]
) -> IngestConfig:
    return bridge_config(namespace, mqtt_url, kafka_bootstrap, client_ids[0])


async def test_readings_and_status_reach_kafka_with_key_and_headers(
    namespace: str, mqtt_url: str, kafka_bootstrap: str, client_ids: list[str]
) -> None:
    metrics = {"listen": "127.0.0.1:0"}
    config = bridge_config(namespace, mqtt_url, kafka_bootstrap, client_ids[0], metrics=metrics)
    topics = config.topics
    readings_topic = topics.mqtt_readings(ASSET)
    status_topic = topics.mqtt_gateway_status("p1", "gw-1")
    status = encode(
        GatewayStatus(
            gateway_id="gw-1", plant="p1", session_id="s1", state=GatewayState.BIRTH, at=BRIDGE_T0
        )
    )
    not_json = b"\x00 not json at all"  # the bridge does not parse: the writer judges payloads
    before = datetime.now(UTC) - timedelta(seconds=1)
    async with bridge_running(Bridge(config)) as bridge:
        await publish(
            mqtt_url,
            [
                (readings_topic, batch_payload(1)),
                (status_topic, status),
                (readings_topic, not_json),
            ],
        )
        raw = await consume(kafka_bootstrap, topics.telemetry_raw, 2)
        [gateway] = await consume(kafka_bootstrap, topics.gateway_status, 1)

        async def all_acked() -> bool:
            return bridge.stats.forwarded == 3 and bridge.stats.in_flight == 0

        await async_wait_for(all_acked, 10, "three messages forwarded and acked")
        assert bridge.metrics_server is not None
        url = f"http://127.0.0.1:{bridge.metrics_server.port}/metrics"

        def scrape() -> str:
            with urllib.request.urlopen(url, timeout=10) as response:
                return str(response.read().decode())

        scraped = await asyncio.to_thread(scrape)  # the scrape reads the stats on this loop
        assert 'plantmesh_ingest_messages_total{role="bridge"} 3.0' in scraped
        assert 'plantmesh_ingest_forwarded_total{role="bridge"} 3.0' in scraped

    assert [r.value for r in sorted(raw, key=lambda r: r.offset)] == [batch_payload(1), not_json]
    for record in raw:
        headers = dict(record.headers)
        assert record.key == b"p1/m7"
        assert headers[HEADER_MQTT_TOPIC] == readings_topic.encode()
        received_at = datetime.fromisoformat(headers[HEADER_RECEIVED_AT].decode())
        assert before <= received_at <= datetime.now(UTC)
    assert gateway.value == status
    assert gateway.key == b"p1/gw-1"
    assert dict(gateway.headers)[HEADER_MQTT_TOPIC] == status_topic.encode()


async def test_messages_published_while_the_bridge_is_down_arrive_after_restart(
    config: IngestConfig, mqtt_url: str, kafka_bootstrap: str
) -> None:
    topic = config.topics.mqtt_readings(ASSET)
    async with bridge_running(Bridge(config)):
        pass  # the broker now holds a persistent session with the subscriptions
    await publish(mqtt_url, [(topic, batch_payload(7)), (topic, batch_payload(8))])
    async with bridge_running(Bridge(config)) as bridge:
        raw = await consume(kafka_bootstrap, config.topics.telemetry_raw, 2)

        async def acked() -> bool:
            return bridge.stats.forwarded == 2

        await async_wait_for(acked, 10, "both queued messages to be forwarded")
    assert [r.value for r in raw] == [batch_payload(7), batch_payload(8)]


async def test_a_topic_that_is_not_ours_goes_to_the_dlq_and_is_acked(
    namespace: str, mqtt_url: str, kafka_bootstrap: str, client_ids: list[str]
) -> None:
    # The same bridge (client id) moved to another namespace: its persistent session still
    # holds the old subscriptions, so messages for the old namespace keep arriving.
    old = bridge_config(f"{namespace}-old", mqtt_url, kafka_bootstrap, client_ids[0])
    new = bridge_config(namespace, mqtt_url, kafka_bootstrap, client_ids[0])
    async with bridge_running(Bridge(old)):
        pass
    old_topic = Topics(f"{namespace}-old").mqtt_readings(ASSET)
    async with bridge_running(Bridge(new)) as bridge:
        await publish(mqtt_url, [(old_topic, batch_payload(1))])
        [dead] = await consume(kafka_bootstrap, new.topics.telemetry_dlq, 1)

        async def acked() -> bool:
            return bridge.stats.dlq == 1 and bridge.stats.in_flight == 0

        await async_wait_for(acked, 10, "the foreign message to be acked")
        assert bridge.stats.dlq_by_reason == {"foreign_topic": 1}
        assert bridge.stats.forwarded == 0
    headers = dict(dead.headers)
    assert dead.value == batch_payload(1)
    assert headers[HEADER_DLQ_REASON] == b"foreign_topic"
    assert headers[HEADER_DLQ_SOURCE] == f"mqtt:{old_topic}".encode()
    assert headers[HEADER_MQTT_TOPIC] == old_topic.encode()


class StubProducer:
    """A Kafka producer whose acknowledgements the test controls, a record batch at a time."""

    def __init__(self) -> None:
        self.sends: list[tuple[str, FakeBatch, asyncio.Future[None]]] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def flush(self) -> None:
        return None

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[None]:
        raise AssertionError("the bridge sends record batches")

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    def create_batch(self) -> FakeBatch:
        return FakeBatch()

    async def send_batch(
        self, batch: FakeBatch, topic: str, *, partition: int
    ) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sends.append((topic, batch, future))
        return future

    def unresolved(self) -> list[asyncio.Future[None]]:
        return [f for _, _, f in self.sends if not f.done()]

    def waiting_messages(self) -> int:
        return sum(len(batch.values) for _, batch, f in self.sends if not f.done())

    def values(self) -> set[bytes]:
        return {value for _, batch, _ in self.sends for value in batch.values}


async def test_nothing_is_acked_while_kafka_fails_and_in_flight_stays_bounded(
    namespace: str, mqtt_url: str, kafka_bootstrap: str, client_ids: list[str]
) -> None:
    config = bridge_config(
        namespace, mqtt_url, kafka_bootstrap, client_ids[0], max_in_flight=3, drain_timeout_s=0.5
    )
    topic = config.topics.mqtt_readings(ASSET)
    payloads = [batch_payload(seq) for seq in range(10)]
    stub = StubProducer()
    async with bridge_running(Bridge(config, producer_factory=lambda: stub)) as bridge:
        await publish(mqtt_url, [(topic, p) for p in payloads])

        async def three_waiting() -> bool:
            return stub.waiting_messages() == 3

        await async_wait_for(three_waiting, 10, "three sends waiting for Kafka")
        for future in stub.unresolved():
            future.set_exception(KafkaConnectionError("broker down"))

        async def retried() -> bool:
            return bridge.stats.send_failures >= 3 and stub.waiting_messages() == 3

        await async_wait_for(retried, 10, "the failed sends to be retried")
        assert bridge.stats.received == 3
        assert bridge.stats.forwarded == 0
    assert bridge.stats.peak_in_flight == 3
    assert stub.values() <= set(payloads[:3])

    # Nothing was acked: a bridge with a working Kafka gets all ten from the broker.
    async with bridge_running(Bridge(config)) as healthy:
        raw = await consume(kafka_bootstrap, config.topics.telemetry_raw, 10)

        async def all_forwarded() -> bool:
            return healthy.stats.forwarded == 10

        await async_wait_for(all_forwarded, 10, "all ten to be forwarded")
    assert sorted(r.value for r in raw) == sorted(payloads)
    assert healthy.stats.peak_in_flight <= 3


async def test_bridge_process_forwards_and_stops_cleanly_on_sigterm(
    namespace: str, mqtt_url: str, kafka_bootstrap: str, client_ids: list[str], tmp_path: Path
) -> None:
    config_file = tmp_path / "ingest.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "namespace": namespace,
                "mqtt": {"url": mqtt_url, "client_id": client_ids[0]},
                "kafka": {"bootstrap": kafka_bootstrap},
                "bridge": {"session_expiry_s": 600},
            }
        )
    )
    log_file = tmp_path / "bridge.log"
    with log_file.open("w") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ingest",
            "bridge",
            "--config",
            str(config_file),
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:

        async def subscribed() -> bool:
            return "MQTT subscribed" in log_file.read_text()

        await async_wait_for(subscribed, 30, "the bridge process to subscribe")
        topics = Topics(namespace)
        await publish(mqtt_url, [(topics.mqtt_readings(ASSET), batch_payload(1))])
        [record] = await consume(kafka_bootstrap, topics.telemetry_raw, 1)
        assert record.value == batch_payload(1)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0, log_file.read_text()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert "bridge stopped" in log_file.read_text()


async def test_a_message_kafka_finds_too_large_goes_to_the_dlq_and_the_rest_flows(
    config: IngestConfig, mqtt_url: str, kafka_bootstrap: str
) -> None:
    # telemetry.raw takes at most 4 kB a record batch here; the bridge's own size limit is
    # higher, so Kafka is the one that refuses. A batch holding the big message is refused as a
    # whole: each of its messages is tried alone, and only the big one ends in the DLQ.
    await create_small_topic(kafka_bootstrap, config.topics.telemetry_raw, 4000)
    readings_topic = config.topics.mqtt_readings(ASSET)
    small = [batch_payload(seq) for seq in range(20)]
    big = b'{"padding": "' + b"x" * 6000 + b'"}'
    messages = [(readings_topic, p) for p in small[:10]]
    messages += [(readings_topic, big)] + [(readings_topic, p) for p in small[10:]]
    async with bridge_running(Bridge(config)) as bridge:
        await publish(mqtt_url, messages)

        async def all_acked() -> bool:
            return bridge.stats.forwarded + bridge.stats.dlq == 21 and bridge.stats.in_flight == 0

        await async_wait_for(all_acked, 20, "all 21 messages acked")
        raw = await consume(kafka_bootstrap, config.topics.telemetry_raw, 20)
        [dead] = await consume(kafka_bootstrap, config.topics.telemetry_dlq, 1)
    assert bridge.stats.dlq_by_reason == {"kafka_rejected": 1}
    assert sorted(r.value for r in raw) == sorted(small)
    assert dead.value == big
    assert dict(dead.headers)[HEADER_DLQ_REASON] == b"kafka_rejected"
