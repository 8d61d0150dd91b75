"""Two bridges in one shared subscription against real Mosquitto and Kafka: a bridge that stops
cleanly with `leave_group_on_stop` leaves its share to the other (Mosquitto would otherwise go
on parking a share in its session until it comes back), and loses nothing it had in hand."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from ingest.bridge import Bridge
from plantmesh.contracts import ReadingBatch, decode
from tests.support.ingest import (
    ASSET,
    batch_payload,
    bridge_config,
    bridge_running,
    forget_session,
    publish,
)
from tests.support.kafka import consume
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

MESSAGES = 400


@pytest.fixture
def client_ids(namespace: str, mqtt_url: str) -> Iterator[list[str]]:
    ids = [f"{namespace}-bridge-a", f"{namespace}-bridge-b"]
    yield ids
    for client_id in ids:
        forget_session(mqtt_url, client_id)


async def test_a_bridge_that_leaves_on_stop_hands_its_share_to_the_other(
    namespace: str, mqtt_url: str, kafka_bootstrap: str, client_ids: list[str]
) -> None:
    group = {"shared_group": f"{namespace}-bridges"}
    first = bridge_config(namespace, mqtt_url, kafka_bootstrap, client_ids[0], **group)
    second = bridge_config(
        namespace, mqtt_url, kafka_bootstrap, client_ids[1], leave_group_on_stop=True, **group
    )
    topic = first.topics.mqtt_readings(ASSET)
    async with bridge_running(Bridge(first)) as staying:
        leaving = Bridge(second)
        async with bridge_running(leaving):
            sending = asyncio.create_task(
                publish(mqtt_url, [(topic, batch_payload(seq)) for seq in range(MESSAGES)])
            )

            async def both_busy() -> bool:
                return staying.stats.forwarded > 0 and leaving.stats.forwarded >= 20

            await async_wait_for(both_busy, 30, "both bridges forwarding")
        # `leaving` has stopped in the middle of the stream and is not started again.
        assert leaving.stats.in_flight == 0
        await asyncio.wait_for(sending, 60)
        records = await consume(
            kafka_bootstrap,
            first.topics.telemetry_raw,
            MESSAGES,
            timeout=60,
            until=lambda got: len({r.value for r in got}) >= MESSAGES,
        )
    seqs = {decode(ReadingBatch, r.value).seq for r in records}
    assert seqs == set(range(MESSAGES)), f"missing {sorted(set(range(MESSAGES)) - seqs)[:10]}"
    assert leaving.stats.forwarded < MESSAGES  # it did share the stream before it left
    assert staying.stats.forwarded + leaving.stats.forwarded >= MESSAGES
