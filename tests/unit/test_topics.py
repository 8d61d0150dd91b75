from __future__ import annotations

import pytest

from plantmesh.contracts import AssetPath
from plantmesh.topics import TopicError, Topics

ASSET = AssetPath(plant="p1", area="a", line="l", machine="m7")


def test_default_names() -> None:
    topics = Topics()
    assert topics.mqtt_readings(ASSET) == "plantmesh/v1/p1/a/l/m7/readings"
    assert topics.mqtt_gateway_status("p1", "gw") == "plantmesh/v1/p1/_gateway/gw/status"
    assert topics.telemetry_raw == "telemetry.raw"
    assert topics.alert_events == "alerts.events"


def test_namespace_prefixes_every_name() -> None:
    topics = Topics("t1")
    assert topics.mqtt_readings_filter == "t1/plantmesh/v1/+/+/+/+/readings"
    assert all(name.startswith("t1.") for name in topics.all_kafka)


def test_kafka_key_is_plant_and_machine() -> None:
    topics = Topics("ns")
    assert topics.kafka_key_for_mqtt_topic(topics.mqtt_readings(ASSET)) == b"p1/m7"
    status = topics.mqtt_gateway_status("p1", "gw-1")
    assert topics.kafka_key_for_mqtt_topic(status) == b"p1/gw-1"
    assert topics.is_status_topic(status)
    assert not topics.is_status_topic(topics.mqtt_readings(ASSET))


@pytest.mark.parametrize("topic", ["other/p1/a/l/m/readings", "ns/plantmesh/v1/p1/a/l/readings"])
def test_foreign_topics_are_refused(topic: str) -> None:
    with pytest.raises(TopicError):
        Topics("ns").kafka_key_for_mqtt_topic(topic)
