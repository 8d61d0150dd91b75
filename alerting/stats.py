"""What the alerting service counts, and the stats line it logs every minute and at its stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field

from alerting.shards import Shards

log = logging.getLogger("alerting.service")

SLOW_POLL_S = 0.25


@dataclass
class ServiceStats:
    messages: int = 0
    readings: int = 0
    """Readings evaluated whose alert events are out (counted after the pipeline, so a
    reader that sees this number also sees those events)."""
    undecodable: Counter[str] = field(default_factory=Counter)
    """Messages skipped as not their topic's contract, by reason (malformed_json,
    schema_mismatch, empty_payload)."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Every message skipped, by reason: the undecodable ones, and those alerting cannot use
    (timestamp_out_of_range, schema_mismatch) or whose handling raised (internal_error); see
    alerting/poison.py. A baseline command that failed counts as internal_error too."""
    events: Counter[str] = field(default_factory=Counter)
    """Alert events published, by kind."""
    commits: int = 0
    commit_failures: int = 0
    checkpoints: int = 0
    """Shard checkpoints written to the state topic."""
    restored: int = 0
    """Shards restored from a checkpoint (at start or when Kafka assigned their partition)."""
    commands: int = 0
    """Baseline commands received (alerting.commands)."""
    republished_skipped: int = 0
    """Events a replay made again that were published before the crash, so skipped."""
    slow_polls: int = 0
    """Polls whose handling took longer than SLOW_POLL_S (logged with their phases)."""
    _slow_logged: float = -math.inf

    def poll_took(self, phases: dict[str, float]) -> None:
        """The seconds each phase of one poll took: a slow one is what delays alerts, so it
        is logged with where the time went (at most once a minute; the rest are counted)."""
        total = sum(phases.values())
        if total < SLOW_POLL_S:
            return
        self.slow_polls += 1
        now = time.monotonic()
        if now - self._slow_logged >= 60.0:
            self._slow_logged = now
            spent = ", ".join(f"{name} {seconds * 1000:.0f}" for name, seconds in phases.items())
            log.warning(
                "slow poll: %.0f ms (%s ms); alerts wait that long (%d slow so far)",
                total * 1000,
                spent,
                self.slow_polls,
            )


async def report_stats(
    stats: ServiceStats, shards: Shards, stopping: asyncio.Event, interval_s: float = 60.0
) -> None:
    """Log the stats every `interval_s` and once more when `stopping` is set."""
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval_s):
                await stopping.wait()
        engines = [s.engine for s in shards.by_partition.values()]
        log.info(
            "alerting stats: messages=%d readings=%d events=%s skipped=%s "
            "commit_failures=%d rule_errors=%d duplicate_batches=%d checkpoints=%d "
            "restored=%d republished_skipped=%d commands=%d elsewhere=%d slow_polls=%d "
            "advance_errors=%d",
            stats.messages,
            stats.readings,
            dict(stats.events),
            dict(stats.skipped),
            stats.commit_failures,
            sum(e.rule_errors for e in engines),
            sum(e.seen.duplicates for e in engines),
            stats.checkpoints,
            stats.restored,
            stats.republished_skipped,
            stats.commands,
            shards.elsewhere,
            stats.slow_polls,
            shards.advance_errors,
        )
