"""The EventSink contract (tests/support/sink_contract.py) for the Kafka sink, against real
Kafka: what it published is read back from the topic, keyed plant/machine."""

from __future__ import annotations

from typing import Any

import pytest

from alerting.sinks import KafkaEventSink
from alerting.sinks.kafka import event_key
from plantmesh.connections import KafkaConnection
from plantmesh.contracts import AlertEvent, decode
from plantmesh.topics import Topics
from tests.support.kafka import consume
from tests.support.sink_contract import EventSinkContract

pytestmark = pytest.mark.integration


class TestKafkaEventSink(EventSinkContract):
    @pytest.fixture
    def sink(self, kafka_bootstrap: str, namespace: str) -> KafkaEventSink:
        self.bootstrap = kafka_bootstrap
        self.topic = Topics(namespace).alert_events  # of this test's own
        return KafkaEventSink(
            KafkaConnection(bootstrap=kafka_bootstrap, client_id=namespace), self.topic
        )

    async def read_back(self, count: int) -> list[Any]:
        records = await consume(self.bootstrap, self.topic, count)
        return [(record.key, decode(AlertEvent, record.value)) for record in records]

    def seen_as(self, event: AlertEvent) -> Any:
        return (event_key(event), event)
