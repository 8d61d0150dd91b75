"""Deciding what is bad input, and how it is labelled on `telemetry.dlq`.

Every rejected message keeps its original bytes; the headers say why (`dlq_reason`, short and
stable enough to count by), what exactly (`dlq_detail`) and where it came from (`dlq_source`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from plantmesh.topics import (
    HEADER_DLQ_DETAIL,
    HEADER_DLQ_REASON,
    HEADER_DLQ_SOURCE,
    TopicError,
    Topics,
)

Headers = list[tuple[str, bytes]]

# Reasons. Decoding adds DecodeError's own: "malformed_json" and "schema_mismatch".
REASON_FOREIGN_TOPIC = "foreign_topic"
REASON_OVERSIZED = "oversized"
REASON_EMPTY = "empty_payload"
REASON_UNWRITABLE = "unwritable"
REASON_INFLUX_REJECTED = "influx_rejected"
REASON_KAFKA_REJECTED = "kafka_rejected"

# A DLQ entry for one reading of a batch: its index in the batch as sent.
HEADER_DLQ_READING_INDEX = "dlq_reading_index"
# On telemetry.normalized: the asset registry version that normalized the batch.
HEADER_REGISTRY_VERSION = "registry_version"

MAX_DETAIL_CHARS = 1000
OVERSIZED_KEEP_BYTES = 64 * 1024


@dataclass(frozen=True)
class Rejection:
    reason: str
    detail: str


@dataclass(frozen=True)
class Route:
    """Where the bridge sends one MQTT message."""

    kafka_topic: str
    key: bytes


def route_mqtt(topics: Topics, mqtt_topic: str) -> Route | Rejection:
    """Readings to telemetry.raw, gateway status to gateway.status, anything else rejected (a
    persistent session can still hold subscriptions from an older configuration)."""
    try:
        key = topics.kafka_key_for_mqtt_topic(mqtt_topic)
    except TopicError as exc:
        return Rejection(REASON_FOREIGN_TOPIC, str(exc))
    kafka_topic = (
        topics.gateway_status if topics.is_status_topic(mqtt_topic) else topics.telemetry_raw
    )
    return Route(kafka_topic, key)


def check_payload_size(payload: bytes, limit: int) -> Rejection | None:
    if len(payload) <= limit:
        return None
    return Rejection(
        REASON_OVERSIZED,
        f"payload of {len(payload)} bytes exceeds bridge.max_payload_bytes={limit}; "
        f"the DLQ keeps the first {min(limit, OVERSIZED_KEEP_BYTES)} bytes",
    )


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 3] + "..."


def kafka_source(topic: str, partition: int, offset: int) -> str:
    return f"{topic}/{partition}/{offset}"


def dlq_headers(
    original: Iterable[tuple[str, bytes]], rejection: Rejection, source: str
) -> Headers:
    """The original headers (minus any earlier DLQ labels) plus reason, detail and source."""
    ours = {HEADER_DLQ_REASON, HEADER_DLQ_DETAIL, HEADER_DLQ_SOURCE}
    headers = [(k, v) for k, v in original if k not in ours]
    headers += [
        (HEADER_DLQ_REASON, rejection.reason.encode()),
        (HEADER_DLQ_DETAIL, _truncate(rejection.detail).encode()),
        (HEADER_DLQ_SOURCE, source.encode()),
    ]
    return headers


def header(headers: Sequence[tuple[str, bytes]], name: str) -> bytes | None:
    """The last value of a header, or None."""
    for key, value in reversed(headers):
        if key == name:
            return value
    return None


class RejectionLog:
    """Logs the first rejection of each reason, with its detail; later ones are only counted, so
    a gateway that keeps sending garbage cannot flood the log."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self.counts: Counter[str] = Counter()

    def rejected(self, rejection: Rejection, source: str) -> None:
        self.counts[rejection.reason] += 1
        if self.counts[rejection.reason] == 1:
            self._log.warning(
                "bad input sent to the DLQ (%s) from %s: %s; further ones are only counted",
                rejection.reason,
                source,
                _truncate(rejection.detail),
            )
