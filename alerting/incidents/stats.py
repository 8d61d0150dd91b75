"""What the incident stage counts, and the stats line it logs every minute and at its stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger("alerting.incidents")


@dataclass
class StageStats:
    # the re-keying loop
    events: int = 0
    """Records read from alerts.events."""
    rekeyed: int = 0
    """Alert events passed on to alerts.by_class (acknowledged there)."""
    transitions: int = 0
    """Alarm transitions of the alarm service (they share alerts.events): skipped."""
    unclassed: int = 0
    """Alert events without a machine class: nothing to compare across plants."""
    uncorrelated: int = 0
    """Alert events whose issue type has no correlation policy (e.g. comms-loss)."""
    undecodable: Counter[str] = field(default_factory=Counter)
    """Records of either input that are not alert events, by reason."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Every record of either input skipped, by reason: the undecodable ones, alert events
    alerting cannot use (alerting/poison.py), those whose handling raised (internal_error), and
    those Kafka refused as too large to pass on (kafka_rejected, incident updates included)."""
    # the correlating loop
    correlated: int = 0
    """Alert events the correlators took in."""
    updates: Counter[str] = field(default_factory=Counter)
    """Incident updates published (acknowledged), by change."""
    correlator_errors: int = 0
    """Events the correlator failed on (a bug: skipped as internal_error), and ticks on which
    a partition's correlator failed to close incidents."""
    commit_failures: int = 0
    checkpoints: int = 0
    """Partition checkpoints written to incidents.state."""
    restored: int = 0
    """Partitions restored from a checkpoint."""

    def line(self) -> str:
        return (
            f"incident stats: events={self.events} rekeyed={self.rekeyed} "
            f"transitions={self.transitions} unclassed={self.unclassed} "
            f"uncorrelated={self.uncorrelated} skipped={dict(self.skipped)} "
            f"correlated={self.correlated} updates={dict(self.updates)} "
            f"correlator_errors={self.correlator_errors} commit_failures={self.commit_failures} "
            f"checkpoints={self.checkpoints} restored={self.restored}"
        )


async def report_stats(
    stats: StageStats, stopping: asyncio.Event, interval_s: float = 60.0
) -> None:
    """Log the stats every `interval_s` and once more when `stopping` is set."""
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval_s):
                await stopping.wait()
        log.info("%s", stats.line())
