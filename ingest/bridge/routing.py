"""Where the bridge sends one MQTT message: its Kafka topic and key, or the DLQ with a reason."""

from __future__ import annotations

from dataclasses import dataclass

from plantmesh.dead_letters import OVERSIZED_KEEP_BYTES, Rejection
from plantmesh.topics import DlqReason, TopicError, Topics


@dataclass(frozen=True)
class KafkaDestination:
    """The Kafka topic and key of one MQTT topic's messages."""

    kafka_topic: str
    key: bytes


def route_mqtt(topics: Topics, mqtt_topic: str) -> KafkaDestination | Rejection:
    """Readings to telemetry.raw, gateway status to gateway.status, anything else rejected (a
    persistent session can still hold subscriptions from an older configuration)."""
    try:
        key = topics.kafka_key_for_mqtt_topic(mqtt_topic)
    except TopicError as exc:
        return Rejection(DlqReason.FOREIGN_TOPIC, str(exc))
    kafka_topic = (
        topics.gateway_status if topics.is_status_topic(mqtt_topic) else topics.telemetry_raw
    )
    return KafkaDestination(kafka_topic, key)


def check_payload_size(payload: bytes, limit: int) -> Rejection | None:
    if len(payload) <= limit:
        return None
    return Rejection(
        DlqReason.OVERSIZED,
        f"payload of {len(payload)} bytes exceeds bridge.max_payload_bytes={limit}; "
        f"the DLQ keeps the first {min(limit, OVERSIZED_KEEP_BYTES)} bytes",
    )
