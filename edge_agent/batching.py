"""Grouping readings into one ReadingBatch per machine, numbered within the agent's session."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from plantmesh.contracts import AssetPath, Reading, ReadingBatch


class Batcher:
    """Turns what one publish interval collected into batches. `seq` runs 0, 1, 2, ... across
    all machines of one session, one number per batch, so ingest can prove completeness."""

    def __init__(self, gateway_id: str, session_id: str, max_readings: int = 1000) -> None:
        if max_readings < 1:
            raise ValueError("max_readings must be at least 1")
        self.gateway_id = gateway_id
        self.session_id = session_id
        self.max_readings = max_readings
        self.next_seq = 0

    def make_batches(self, readings: Iterable[Reading], sent_at: datetime) -> list[ReadingBatch]:
        """One batch per machine (more if it has more than `max_readings`), machines in order of
        their first reading, readings in arrival order."""
        groups: dict[AssetPath, list[Reading]] = {}
        for reading in readings:
            groups.setdefault(reading.asset, []).append(reading)
        batches = []
        for items in groups.values():
            for start in range(0, len(items), self.max_readings):
                batches.append(
                    ReadingBatch(
                        gateway_id=self.gateway_id,
                        session_id=self.session_id,
                        seq=self.next_seq,
                        sent_at=sent_at,
                        readings=items[start : start + self.max_readings],
                    )
                )
                self.next_seq += 1
        return batches
