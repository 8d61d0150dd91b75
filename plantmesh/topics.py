"""Every MQTT and Kafka topic name plantmesh uses, in one place.

MQTT follows an ISA-95 unified namespace: `<root>/<plant>/<area>/<line>/<machine>/readings` for
reading batches and `<root>/<plant>/_gateway/<gateway_id>/status` for gateway lifecycle. A
`namespace` prefixes every name so several deployments (or test runs) can share one broker and
one Kafka cluster without seeing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

from pydantic import StringConstraints

if TYPE_CHECKING:  # contracts import DlqReason from here: no import cycle at run time
    from plantmesh.contracts import AssetPath

# A namespace is safe in MQTT topics and Kafka topic names alike ([A-Za-z0-9._-] is Kafka's
# alphabet); empty means none. Services take it as the `namespace:` key of their config.
Namespace = Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9][A-Za-z0-9._-]{0,62})?$")]

MQTT_ROOT = "plantmesh/v1"
READINGS_LEAF = "readings"
GATEWAY_LEVEL = "_gateway"
STATUS_LEAF = "status"


def gateway_key(plant: str, gateway_id: str) -> bytes:
    """The Kafka key of everything about one gateway downstream of the bridge: its status, its
    normalized batches, its sequence records and completeness events. One key makes these
    topics co-partitioned (same partition count, same key, same partition), so the consumer
    that owns a gateway's batches also owns its births, deaths and gaps (alerting)."""
    return f"{plant}/{gateway_id}".encode()


class TopicError(ValueError):
    """An MQTT topic that is not one of ours."""


@dataclass(frozen=True)
class Topics:
    namespace: str = ""

    # --- MQTT -------------------------------------------------------------------------------
    @property
    def mqtt_root(self) -> str:
        return f"{self.namespace}/{MQTT_ROOT}" if self.namespace else MQTT_ROOT

    def mqtt_readings(self, asset: AssetPath) -> str:
        return f"{self.mqtt_root}/{asset.key}/{READINGS_LEAF}"

    def mqtt_gateway_status(self, plant: str, gateway_id: str) -> str:
        return f"{self.mqtt_root}/{plant}/{GATEWAY_LEVEL}/{gateway_id}/{STATUS_LEAF}"

    @property
    def mqtt_readings_filter(self) -> str:
        return f"{self.mqtt_root}/+/+/+/+/{READINGS_LEAF}"

    @property
    def mqtt_status_filter(self) -> str:
        return f"{self.mqtt_root}/+/{GATEWAY_LEVEL}/+/{STATUS_LEAF}"

    def kafka_key_for_mqtt_topic(self, topic: str) -> bytes:
        """`plant/machine` for a readings topic, `plant/<gateway_id>` (gateway_key) for a status
        topic.

        Raw readings are keyed by plant and machine so one machine's data stays in order in one
        partition; the writer re-keys them by gateway on telemetry.normalized."""
        prefix = self.mqtt_root + "/"
        if not topic.startswith(prefix):
            raise TopicError(f"topic {topic!r} is outside {self.mqtt_root!r}")
        parts = topic[len(prefix) :].split("/")
        if len(parts) == 5 and parts[4] == READINGS_LEAF:
            return f"{parts[0]}/{parts[3]}".encode()
        if len(parts) == 4 and parts[1] == GATEWAY_LEVEL and parts[3] == STATUS_LEAF:
            return gateway_key(parts[0], parts[2])
        raise TopicError(f"topic {topic!r} is neither a readings nor a gateway status topic")

    def is_status_topic(self, topic: str) -> bool:
        return topic.endswith(f"/{STATUS_LEAF}") and f"/{GATEWAY_LEVEL}/" in topic

    # --- Kafka ------------------------------------------------------------------------------
    def _kafka(self, name: str) -> str:
        return f"{self.namespace}.{name}" if self.namespace else name

    @property
    def telemetry_raw(self) -> str:
        return self._kafka("telemetry.raw")

    @property
    def telemetry_normalized(self) -> str:
        return self._kafka("telemetry.normalized")

    @property
    def telemetry_dlq(self) -> str:
        return self._kafka("telemetry.dlq")

    @property
    def gateway_status(self) -> str:
        return self._kafka("gateway.status")

    @property
    def alert_events(self) -> str:
        return self._kafka("alerts.events")

    @property
    def telemetry_completeness(self) -> str:
        """Data-completeness events (CompletenessEvent), keyed plant/gateway_id."""
        return self._kafka("telemetry.completeness")

    @property
    def telemetry_sequences(self) -> str:
        """Ingest-internal: one record per batch, re-keyed plant/gateway_id for the ledger."""
        return self._kafka("telemetry.sequences")

    @property
    def ingest_ledger(self) -> str:
        """Ingest-internal, compacted: the completeness ledger's state per gateway."""
        return self._kafka("ingest.ledger")

    @property
    def alerting_state(self) -> str:
        """Alerting-internal, compacted: each input partition's engine checkpoint."""
        return self._kafka("alerting.state")

    @property
    def alerting_commands(self) -> str:
        """Alerting-internal: commands to every alerting process (SPC baseline actions)."""
        return self._kafka("alerting.commands")

    @property
    def alerts_by_class(self) -> str:
        """Alerting-internal: alert events re-keyed `<machine class>/<issue type>`, so the
        network-incident stage sees every plant's alerts of one pattern in one partition."""
        return self._kafka("alerts.by_class")

    @property
    def incident_events(self) -> str:
        """Network incidents (IncidentUpdate), keyed by incident id."""
        return self._kafka("incidents.events")

    @property
    def incidents_state(self) -> str:
        """Alerting-internal, compacted: the incident stage's checkpoints per input partition."""
        return self._kafka("incidents.state")

    @property
    def all_kafka(self) -> tuple[str, ...]:
        return (
            self.telemetry_raw,
            self.telemetry_normalized,
            self.telemetry_dlq,
            self.gateway_status,
            self.alert_events,
            self.telemetry_completeness,
            self.telemetry_sequences,
            self.ingest_ledger,
            self.alerting_state,
            self.alerting_commands,
            self.alerts_by_class,
            self.incident_events,
            self.incidents_state,
        )


DEFAULT_TOPICS = Topics()

# Kafka message headers the bridge adds to what it forwards.
HEADER_MQTT_TOPIC = "mqtt_topic"
HEADER_RECEIVED_AT = "received_at"
HEADER_MQTT_PUBLISHERS = "mqtt_publishers"
"""The gateways the broker's ACL lets publish on the message's MQTT topic, comma-separated
(plantmesh.identities); absent when the bridge runs without a gateway registry."""
# Kafka message headers of a telemetry.dlq entry: why it is there (a DlqReason), what exactly, and
# where it came from (`mqtt:<topic>` or `<kafka topic>/<partition>/<offset>`).
HEADER_DLQ_REASON = "dlq_reason"
HEADER_DLQ_DETAIL = "dlq_detail"
HEADER_DLQ_SOURCE = "dlq_source"
HEADER_DLQ_READING_INDEX = "dlq_reading_index"
"""A DLQ entry for one reading of a batch: its index in the batch as sent."""
HEADER_REGISTRY_VERSION = "registry_version"
"""On telemetry.normalized: the asset registry version that normalized the batch."""
HEADER_MACHINE_CLASS = "machine_class"
"""On telemetry.normalized: the machine's class in the asset registry (rules target classes)."""


class DlqReason(StrEnum):
    """Why a message or a reading is on telemetry.dlq: short and stable, so it can be counted by
    (the `dlq_reason` header, the `reason` label of the DLQ metrics)."""

    # the bridge
    FOREIGN_TOPIC = "foreign_topic"
    """An MQTT topic that is neither a readings nor a gateway status topic."""
    OVERSIZED = "oversized"
    """Larger than bridge.max_payload_bytes or writer.validation.max_message_bytes."""
    KAFKA_REJECTED = "kafka_rejected"
    """Kafka refused the message for good (too large for the topic)."""
    # the contract
    EMPTY_PAYLOAD = "empty_payload"
    MALFORMED_JSON = "malformed_json"
    SCHEMA_MISMATCH = "schema_mismatch"
    NON_FINITE_VALUE = "non_finite_value"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    # the asset registry
    UNKNOWN_PLANT = "unknown_plant"
    UNKNOWN_MACHINE = "unknown_machine"
    UNKNOWN_SIGNAL = "unknown_signal"
    UNIT_MISMATCH = "unit_mismatch"
    UNKNOWN_UNIT = "unknown_unit"
    """A unit outside the known engineering units (ingest.normalize.units): `unit` is a tag."""
    SERIES_LIMIT = "series_limit"
    """A new series of a plant that has writer.validation.max_series_per_plant already."""
    IDENTITY_MISMATCH = "identity_mismatch"
    """The payload names a gateway or plant other than the MQTT identity and topic it came in
    with (plantmesh.identities)."""
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    """The same gateway, session and seq as a batch stored already, with other content."""
    # InfluxDB
    UNWRITABLE = "unwritable"
    """A reading that has no line-protocol form (a name InfluxDB cannot take)."""
    INFLUX_REJECTED = "influx_rejected"
    """InfluxDB refused the points (a field type conflict, for example)."""
    INTERNAL_ERROR = "internal_error"
    """Handling the message raised an unexpected exception (its type is in the detail): the
    message is set aside so that the service goes on."""
