"""The ingest configuration: one file serves the bridge and the writer, so both roles agree on
namespace, servers and topic layout."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from plantmesh.config import ConfigModel
from plantmesh.connections import InfluxConnection, KafkaConnection, MqttConnection
from plantmesh.topics import Topics

DEFAULT_BRIDGE_CLIENT_ID = "plantmesh-bridge-1"
# Safe in MQTT topics and Kafka topic names alike ([A-Za-z0-9._-] is Kafka's alphabet).
NAMESPACE_PATTERN = r"^([A-Za-z0-9][A-Za-z0-9._-]{0,62})?$"


class BridgeSettings(ConfigModel):
    shared_group: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")] = (
        "plantmesh-bridge"
    )
    """Bridges with the same group share the MQTT load: `$share/<group>/<filter>`."""
    max_in_flight: Annotated[int, Field(ge=1, le=65535)] = 1000
    """MQTT messages received but not yet acknowledged by Kafka. Sent to the broker as the MQTT 5
    Receive Maximum, so the broker stops sending when the bridge is this far behind."""
    session_expiry_s: Annotated[int, Field(ge=0, le=0xFFFFFFFF)] = 7 * 24 * 3600
    """How long the broker keeps queueing for this bridge while it is down."""
    max_payload_bytes: Annotated[int, Field(ge=1024)] = 900_000
    """Larger MQTT payloads go to the DLQ (truncated) instead of failing in Kafka forever.
    Keep below the broker's `message.max.bytes` (1 MiB by default)."""
    drain_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """On shutdown, how long to wait for Kafka to acknowledge what is in flight."""


class WriterSettings(ConfigModel):
    group_id: Annotated[str, Field(min_length=1)] = "plantmesh-writer"
    max_batch_readings: Annotated[int, Field(ge=1)] = 5000
    """Points per InfluxDB write request."""
    max_poll_records: Annotated[int, Field(ge=1)] = 500
    """Kafka messages (reading batches) handled per poll; one commit per poll."""
    create_database: bool = True
    """POST /query `CREATE DATABASE` at start: InfluxDB 1.x needs it, 2.x/3.x have no such call."""


class KafkaTopicSettings(ConfigModel):
    create: bool = True
    """Create missing topics at start (an explicit layout beats the broker's auto-creation)."""
    partitions: Annotated[int, Field(ge=1)] = 4
    replication_factor: Annotated[int, Field(ge=1)] = 1


class BackoffSettings(ConfigModel):
    initial_s: Annotated[float, Field(gt=0)] = 0.2
    max_s: Annotated[float, Field(gt=0)] = 30.0

    @model_validator(mode="after")
    def _ordered(self) -> BackoffSettings:
        if self.max_s < self.initial_s:
            raise ValueError("max_s must be at least initial_s")
        return self


class IngestConfig(ConfigModel):
    namespace: Annotated[str, Field(pattern=NAMESPACE_PATTERN)] = ""
    mqtt: MqttConnection = Field(
        default_factory=lambda: MqttConnection(client_id=DEFAULT_BRIDGE_CLIENT_ID)
    )
    kafka: KafkaConnection = Field(default_factory=KafkaConnection)
    influxdb: InfluxConnection = Field(default_factory=InfluxConnection)
    bridge: BridgeSettings = Field(default_factory=BridgeSettings)
    writer: WriterSettings = Field(default_factory=WriterSettings)
    kafka_topics: KafkaTopicSettings = Field(default_factory=KafkaTopicSettings)
    backoff: BackoffSettings = Field(default_factory=BackoffSettings)

    @property
    def topics(self) -> Topics:
        return Topics(self.namespace)

    @property
    def bridge_client_id(self) -> str:
        """A fixed id: the broker keeps the bridge's persistent session under it."""
        return self.mqtt.client_id or DEFAULT_BRIDGE_CLIENT_ID
