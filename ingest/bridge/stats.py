"""The bridge's counters: one count per fact, read by tests and by the metrics endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field

from plantmesh.topics import DlqReason


@dataclass
class BridgeStats:
    """Changed only on the bridge's event loop."""

    received: int = 0
    forwarded: int = 0
    """Acked by Kafka on telemetry.raw or gateway.status, then acked to MQTT."""
    dlq: int = 0
    """Acked by Kafka on telemetry.dlq, then acked to MQTT."""
    dlq_by_reason: dict[DlqReason, int] = field(default_factory=dict)
    dropped: int = 0
    """DLQ entries Kafka refused even on their own: given up on and acked to MQTT."""
    send_failures: int = 0
    """Kafka sends that failed and were retried."""
    retained_skipped: int = 0
    """Retained reading batches acked and not forwarded (sent again at each subscription)."""
    left_to_broker: int = 0
    """Messages not acked on purpose (connection lost or shutdown): the broker redelivers them."""
    in_flight: int = 0
    peak_in_flight: int = 0
    connects: int = 0
    subscribed: int = 0
    """Subscriptions granted: once per connection."""
