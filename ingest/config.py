"""The ingest configuration: one file serves the bridge and the writer, so both roles agree on
namespace, servers and topic layout."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field

from plantmesh.config import ConfigModel, load_config, resolve_relative
from plantmesh.connections import (
    BackoffSettings,
    InfluxConnection,
    KafkaConnection,
    KafkaTopicSettings,
    MetricsEndpoint,
    MqttConnection,
)
from plantmesh.topics import Namespace, Topics

BRIDGE_GATEWAYS_VAR = "PLANTMESH_BRIDGE_GATEWAYS_FILE"

DEFAULT_BRIDGE_CLIENT_ID = "plantmesh-bridge-1"


class ValidationSettings(ConfigModel):
    max_message_bytes: Annotated[int, Field(ge=1024)] = 1_000_000
    """Larger raw messages go to the DLQ as `oversized`."""
    max_future_s: Annotated[float, Field(gt=0)] | None = 600.0
    """Readings stamped further ahead of the writer's clock go to the DLQ (null: no bound)."""
    max_past_s: Annotated[float, Field(gt=0)] | None = 30 * 86_400.0
    """Readings older than this go to the DLQ (null: no bound). Late data a gateway drains from
    its buffer after an outage must fit inside, as must a replay of old Kafka data."""
    max_series_per_plant: Annotated[int, Field(ge=1)] = 50_000
    """Distinct `readings` series one plant may create in a writer's lifetime; readings of a
    new series beyond go to the DLQ as `series_limit` (a broken gateway cannot flood InfluxDB)."""
    duplicate_window: Annotated[int, Field(ge=0)] = 100_000
    """Recent batches (gateway, session, seq) whose content the writer remembers, to refuse a
    replay with other content as `conflicting_duplicate` (0: off). On taking a partition the
    writer reads back up to its share of this many committed batches there (restart-proof)."""


class CompletenessSettings(ConfigModel):
    enabled: bool = True
    """Track gateway sequence numbers (see docs/ingest.md, "Completeness ledger")."""
    gap_alert_after_s: Annotated[float, Field(gt=0)] = 300.0
    """A gap still open this long raises a `gap_open` event on telemetry.completeness."""
    flush_interval_s: Annotated[float, Field(gt=0)] = 10.0
    """How often figures go to InfluxDB, snapshots to telemetry.ledger and offsets are committed."""
    forget_after_s: Annotated[float, Field(gt=0)] = 7 * 86_400.0
    """A session with no batch for this long is dropped from the ledger (its figures stay)."""


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
    leave_group_on_stop: bool = False
    """On a clean stop, leave the shared subscription first (UNSUBSCRIBE) and forward what the
    broker had already sent, so the group's other bridges get everything from then on. Mosquitto
    goes on giving a share to a member whose session is still there, connected or not: set it
    when several bridges share the group (a rolling restart or a scale-down then parks nothing);
    leave it off for a single bridge, whose messages should wait in its session while it
    restarts. A crash leaves nothing: the bridge must come back under its client id."""
    gateways: Path | None = Field(
        default_factory=lambda: Path(p) if (p := os.environ.get(BRIDGE_GATEWAYS_VAR)) else None
    )
    """The gateway registry the broker's ACL is made from (`plantmesh gateway add` keeps it:
    `$PLANTMESH_MQTT_GATEWAYS_FILE`; relative to this file; default: $PLANTMESH_BRIDGE_GATEWAYS_FILE). With it, each message carries the
    gateways allowed on its topic and the writer refuses a payload naming another gateway
    (`identity_mismatch`); a status from an unregistered gateway goes to the DLQ."""
    metrics: MetricsEndpoint = Field(default_factory=MetricsEndpoint)


class WriterSettings(ConfigModel):
    group_id: Annotated[str, Field(min_length=1)] = "plantmesh-writer"
    max_batch_readings: Annotated[int, Field(ge=1)] = 5000
    """Points per InfluxDB write request."""
    max_poll_records: Annotated[int, Field(ge=1)] = 500
    """Kafka messages (reading batches) handled per poll; one commit per poll."""
    create_database: bool = True
    """POST /query `CREATE DATABASE` at start: InfluxDB 1.x needs it, 2.x/3.x have no such call."""
    registry: Path | None = None
    """The asset registry YAML (relative to this file); without it readings pass unchanged."""
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    pause_after_s: Annotated[float, Field(gt=0)] = 1.0
    """A write still unfinished after this long pauses the partitions (backpressure): the writer
    keeps polling to stay in the group but fetches nothing until InfluxDB took the points."""
    gzip: bool = False
    """gzip the InfluxDB write requests: worth it over a slow link (line protocol shrinks ~10x);
    on a LAN or loopback it costs more CPU (about 7 µs a point) than it saves."""
    completeness: CompletenessSettings = Field(default_factory=CompletenessSettings)
    metrics: MetricsEndpoint = Field(default_factory=MetricsEndpoint)


class IngestConfig(ConfigModel):
    namespace: Namespace = ""
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


def load_ingest_config(path: Path | str) -> IngestConfig:
    """`load_config`, with the registry, gateway registry and MQTT password file paths taken
    relative to the config file."""
    config = load_config(IngestConfig, path)
    if config.writer.registry is not None:
        registry = resolve_relative(path, config.writer.registry)
        writer = config.writer.model_copy(update={"registry": registry})
        config = config.model_copy(update={"writer": writer})
    if config.mqtt.password_file is not None:
        password_file = resolve_relative(path, config.mqtt.password_file)
        config = config.model_copy(
            update={"mqtt": config.mqtt.model_copy(update={"password_file": password_file})}
        )
    if config.bridge.gateways is not None:
        gateways = resolve_relative(path, config.bridge.gateways)
        bridge = config.bridge.model_copy(update={"gateways": gateways})
        config = config.model_copy(update={"bridge": bridge})
    return config
