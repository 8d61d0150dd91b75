from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.bridge.routing import KafkaDestination, check_payload_size, route_mqtt
from plantmesh.contracts import AssetPath
from plantmesh.dead_letters import MAX_DETAIL_CHARS, Rejection, dlq_headers, header, kafka_source
from plantmesh.topics import (
    HEADER_DLQ_DETAIL,
    HEADER_DLQ_REASON,
    HEADER_DLQ_SOURCE,
    DlqReason,
    Topics,
)

TOPICS = Topics("ns")
ASSET = AssetPath(plant="p1", area="a", line="l", machine="m7")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def batch_json(**reading_changes: object) -> dict[str, object]:
    reading: dict[str, object] = {
        "asset": ASSET.model_dump(),
        "signal": "temp",
        "value": 1.5,
        "source_ts": "2026-01-01T00:00:00Z",
        "gateway_ts": "2026-01-01T00:00:01Z",
    }
    reading.update(reading_changes)
    return {
        "gateway_id": "gw",
        "session_id": "s1",
        "seq": 3,
        "sent_at": "2026-01-01T00:00:02Z",
        "readings": [reading],
    }


# --- the bridge's routing ---------------------------------------------------------------------
def test_readings_route_to_raw_keyed_plant_machine() -> None:
    assert route_mqtt(TOPICS, TOPICS.mqtt_readings(ASSET)) == KafkaDestination(
        "ns.telemetry.raw", b"p1/m7"
    )


def test_gateway_status_routes_to_status_topic() -> None:
    route = route_mqtt(TOPICS, TOPICS.mqtt_gateway_status("p1", "gw-1"))
    assert route == KafkaDestination("ns.gateway.status", b"p1/gw-1", status=True)


@pytest.mark.parametrize(
    "topic",
    [
        "other/plantmesh/v1/p1/a/l/m/readings",  # another namespace
        "ns/plantmesh/v1/p1/a/l/readings",  # too short
        "ns/plantmesh/v1/p1/a/l/m/events",  # unknown leaf
        "ns/plantmesh/v1/p1/_gateway/gw/health",
    ],
)
def test_foreign_topics_are_rejected(topic: str) -> None:
    result = route_mqtt(TOPICS, topic)
    assert isinstance(result, Rejection)
    assert result.reason == DlqReason.FOREIGN_TOPIC
    assert topic in result.detail


def test_payload_size_limit() -> None:
    assert check_payload_size(b"x" * 10, 10) is None
    rejection = check_payload_size(b"x" * 11, 10)
    assert rejection is not None
    assert rejection.reason == DlqReason.OVERSIZED
    assert "11 bytes" in rejection.detail


# --- DLQ headers ------------------------------------------------------------------------------
def test_dlq_headers_keep_the_original_and_add_reason_detail_source() -> None:
    original = [("mqtt_topic", b"t"), (HEADER_DLQ_REASON, b"older")]
    headers = dlq_headers(original, Rejection("schema_mismatch", "x: bad"), "raw/2/17")
    assert header(headers, "mqtt_topic") == b"t"
    assert header(headers, HEADER_DLQ_REASON) == b"schema_mismatch"
    assert [k for k, _ in headers].count(HEADER_DLQ_REASON) == 1
    assert header(headers, HEADER_DLQ_DETAIL) == b"x: bad"
    assert header(headers, HEADER_DLQ_SOURCE) == b"raw/2/17"


def test_dlq_detail_is_truncated() -> None:
    headers = dlq_headers([], Rejection("r", "x" * 5000), "s")
    detail = header(headers, HEADER_DLQ_DETAIL)
    assert detail is not None
    assert len(detail) == MAX_DETAIL_CHARS
    assert detail.endswith(b"...")


def test_kafka_source_names_topic_partition_offset() -> None:
    assert kafka_source("ns.telemetry.raw", 3, 42) == "ns.telemetry.raw/3/42"
