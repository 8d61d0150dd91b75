"""The EventSink contract (tests/support/sink_contract.py) for the Kafka sink, against real
Kafka: what it published is read back from the topic, keyed plant/machine."""

from __future__ import annotations

from typing import Any

import pytest

from alerting.sinks import KafkaEventSink
from alerting.sinks.kafka import event_key
from plantmesh.connections import KafkaConnection
from plantmesh.contracts import AlertEvent, decode
from plantmesh.kafka.admin import ensure_topics
from plantmesh.topics import Topics
from tests.support.kafka import consume
from tests.support.sink_contract import EventSinkContract

pytestmark = pytest.mark.integration


class TestKafkaEventSink(EventSinkContract):
    @pytest.fixture
    async def sink(self, kafka_bootstrap: str, namespace: str) -> KafkaEventSink:
        self.bootstrap = kafka_bootstrap
        self.topic = Topics(namespace).alert_events  # of this test's own
        kafka = KafkaConnection(bootstrap=kafka_bootstrap, client_id=namespace)
        # The alerting service creates the topic before its sinks start (no auto-creation).
        await ensure_topics(kafka, [self.topic], 4, 1)
        return KafkaEventSink(kafka, self.topic)

    async def read_back(self, count: int) -> list[Any]:
        records = await consume(self.bootstrap, self.topic, count)
        return [(record.key, decode(AlertEvent, record.value)) for record in records]

    def seen_as(self, event: AlertEvent) -> Any:
        return (event_key(event), event)
