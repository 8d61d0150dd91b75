"""Where the bridge sends one MQTT message: its Kafka topic and key, or the DLQ with a reason.

Reading batches pass byte for byte (the writer checks them); a gateway status is checked here
against its contract, and against the topic it came in on, since nothing downstream of the
bridge checks it before alerting acts on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from ingest.checks.outcome import rejection_of
from ingest.config import BridgeSettings
from plantmesh.contracts import GatewayStatus
from plantmesh.dead_letters import (
    OVERSIZED_KEEP_BYTES,
    Headers,
    Rejection,
    RejectionLog,
    dlq_headers,
)
from plantmesh.identities import Publishers, encode_publishers
from plantmesh.kafka.refusals import Outgoing
from plantmesh.topics import (
    HEADER_MQTT_PUBLISHERS,
    HEADER_MQTT_TOPIC,
    HEADER_RECEIVED_AT,
    DlqReason,
    TopicError,
    Topics,
)

ROUTE_CACHE_SIZE = 100_000


@dataclass(frozen=True)
class KafkaDestination:
    """The Kafka topic and key of one MQTT topic's messages."""

    kafka_topic: str
    key: bytes
    status: bool = False
    """A gateway status topic: the payload is checked before it goes on."""


_Route = tuple[KafkaDestination | Rejection, Headers, frozenset[str] | None]


def route_mqtt(topics: Topics, mqtt_topic: str) -> KafkaDestination | Rejection:
    """Readings to telemetry.raw, gateway status to gateway.status, anything else rejected (a
    persistent session can still hold subscriptions from an older configuration)."""
    try:
        key = topics.kafka_key_for_mqtt_topic(mqtt_topic)
    except TopicError as exc:
        return Rejection(DlqReason.FOREIGN_TOPIC, str(exc))
    if topics.is_status_topic(mqtt_topic):
        return KafkaDestination(topics.gateway_status, key, status=True)
    return KafkaDestination(topics.telemetry_raw, key)


def check_status(payload: bytes, key: bytes) -> Rejection | None:
    """A GatewayStatus, of the plant and gateway its topic names (`key`: plant/gateway_id)."""
    try:
        status = GatewayStatus.model_validate_json(payload)
    except ValidationError as exc:
        return rejection_of(exc)
    claimed = f"{status.plant}/{status.gateway_id}".encode()
    if claimed != key:
        return Rejection(
            DlqReason.IDENTITY_MISMATCH,
            f"status of {claimed.decode()} published on the topic of {key.decode()}",
        )
    return None


def check_payload_size(payload: bytes, limit: int) -> Rejection | None:
    if len(payload) <= limit:
        return None
    return Rejection(
        DlqReason.OVERSIZED,
        f"payload of {len(payload)} bytes exceeds bridge.max_payload_bytes={limit}; "
        f"the DLQ keeps the first {min(limit, OVERSIZED_KEEP_BYTES)} bytes",
    )


def mqtt_source(mqtt_topic: str) -> str:
    """The `dlq_source` of a message the bridge took from MQTT."""
    return f"mqtt:{mqtt_topic}"


class Router:
    """Makes each MQTT message's Outgoing. Routes are remembered per MQTT topic, with the topic's
    header value: a bridge sees the same few thousand machine topics over and over."""

    def __init__(
        self,
        topics: Topics,
        settings: BridgeSettings,
        rejections: RejectionLog,
    ) -> None:
        self.topics = topics
        self.max_payload_bytes = settings.max_payload_bytes
        self.rejections = rejections
        gateways = settings.gateways
        self.publishers = None if gateways is None else Publishers(gateways, topics)
        """The gateway registry: who may publish on each topic (the header the writer checks)."""
        self._generation = -1
        self._routes: dict[str, _Route] = {}

    def outgoing(self, mqtt_topic: str, payload: bytes, received_at: str) -> Outgoing:
        try:
            return self._outgoing(mqtt_topic, payload, received_at)
        except Exception as exc:  # whatever one message does, the bridge goes on
            rejection = Rejection(DlqReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
            headers = [(HEADER_MQTT_TOPIC, mqtt_topic.encode(errors="replace"))]
            kept = payload[:OVERSIZED_KEEP_BYTES]
            return self._to_dlq(mqtt_topic, kept, headers, rejection)

    def _outgoing(self, mqtt_topic: str, payload: bytes, received_at: str) -> Outgoing:
        publishers = self.publishers
        if publishers is not None:
            publishers.refresh()
            if publishers.generation != self._generation:  # the registry changed
                self._generation = publishers.generation
                self._routes.clear()
        found = self._routes.get(mqtt_topic)
        if found is None:
            if len(self._routes) >= ROUTE_CACHE_SIZE:
                self._routes.clear()
            found = self._routes[mqtt_topic] = self._route(mqtt_topic)
        route, origin, allowed = found
        headers: Headers = [*origin, (HEADER_RECEIVED_AT, received_at.encode())]
        limit = self.max_payload_bytes
        rejection = check_payload_size(payload, limit)
        if rejection is not None:
            kept = payload[: min(limit, OVERSIZED_KEEP_BYTES)]
            return self._to_dlq(mqtt_topic, kept, headers, rejection)
        if isinstance(route, Rejection):
            return self._to_dlq(mqtt_topic, payload, headers, route)
        if route.status:
            if not payload:
                rejection = Rejection(DlqReason.EMPTY_PAYLOAD, "status message has no payload")
            else:
                rejection = check_status(payload, route.key)
            if rejection is None and allowed is not None and not allowed:
                rejection = Rejection(
                    DlqReason.IDENTITY_MISMATCH,
                    f"no gateway in the registry may publish on {mqtt_topic}",
                )
            if rejection is not None:
                return self._to_dlq(mqtt_topic, payload, headers, rejection)
        return Outgoing(route.kafka_topic, route.key, payload, headers)

    def _route(self, mqtt_topic: str) -> _Route:
        """Where the topic's messages go, the headers saying where they came from, and who may
        publish there (None: no registry)."""
        origin: Headers = [(HEADER_MQTT_TOPIC, mqtt_topic.encode())]
        allowed = None
        if self.publishers is not None:
            allowed = self.publishers.of_topic(mqtt_topic)
            origin.append((HEADER_MQTT_PUBLISHERS, encode_publishers(allowed)))
        return route_mqtt(self.topics, mqtt_topic), origin, allowed

    def _to_dlq(
        self, mqtt_topic: str, value: bytes, headers: Headers, rejection: Rejection
    ) -> Outgoing:
        source = mqtt_source(mqtt_topic)
        self.rejections.rejected(rejection, source)
        headers = dlq_headers(headers, rejection, source)
        return Outgoing(self.topics.telemetry_dlq, None, value, headers, rejection, source)
