"""The writer's counters: plain numbers that tests read and each metrics scrape turns into metric
families (ingest.writer.metrics), so every fact is counted once."""

from __future__ import annotations

from dataclasses import dataclass, field

from plantmesh.topics import DlqReason


@dataclass
class WriterStats:
    messages: int = 0
    """Raw messages consumed."""
    batches: int = 0
    """Reading batches written to InfluxDB and forwarded to telemetry.normalized."""
    written_points: int = 0
    dlq: int = 0
    """DLQ entries: whole messages and single readings."""
    dlq_by_reason: dict[DlqReason, int] = field(default_factory=dict)
    pauses: int = 0
    """Times the partitions were paused because InfluxDB was slow or down."""
    paused: bool = False
    """The partitions are paused right now."""
    influx_failures: int = 0
    """Write attempts InfluxDB did not take (each was retried)."""
    produce_dropped: int = 0
    """DLQ entries Kafka refused for good (too large); logged as errors. Other messages Kafka
    refuses as too large go to the DLQ (reason kafka_rejected), their first 64 KiB."""
    commits: int = 0
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    """(topic, partition) -> the next offset this writer committed."""
