"""What the publisher counts (health, metrics, the stop log line)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PublisherStats:
    readings_in: int = 0
    dropped_readings: int = 0
    """Readings refused because the queue was full (the broker could not keep up)."""
    batches_made: int = 0
    batches_sent: int = 0
    """PUBLISH packets of batches, republished ones included."""
    batches_acked: int = 0
    readings_acked: int = 0
    batches_rejected: int = 0
    """Batches the broker answered with a failure reason code (e.g. not authorized): dropped."""
    batches_lost_at_stop: int = 0
    """Unacknowledged when the agent stopped with a memory buffer."""
    connects: int = 0

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)
