"""Grouping readings into one ReadingBatch per machine, numbered within the agent's session.

Readings arrive as JSON text (sources encode them from precomputed pieces, edge_agent.reading_json)
and only their text waits for the end of the publish interval: a queued Reading model costs about
1.2 KB, its JSON about 250 bytes. At 10,000 changes a second (and twice that while a subscription
delivers its initial values) that is the difference between 25 MB and 5 MB of an agent that has to
fit in 100 MB. A batch's payload is then its envelope with the readings' JSON spliced in, byte for
byte what `encode(ReadingBatch(...))` gives; the envelope too is made from a precomputed head.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from edge_agent.reading_json import MachineJson, timestamp_json
from plantmesh.contracts import AssetPath, Reading, ReadingBatch

_PROBE_TS = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class EncodedBatch:
    """One batch, ready for the buffer."""

    seq: int
    asset: AssetPath
    payload: bytes
    readings: int


class Batcher:
    """Collects what one publish interval read and turns it into batches. `seq` runs 0, 1, 2, ...
    across all machines of one session, one number per batch, so ingest can prove completeness."""

    __slots__ = (
        "_groups",
        "_head",
        "_pending",
        "gateway_id",
        "max_readings",
        "next_seq",
        "session_id",
    )

    def __init__(self, gateway_id: str, session_id: str, max_readings: int = 1000) -> None:
        if max_readings < 1:
            raise ValueError("max_readings must be at least 1")
        self.gateway_id = gateway_id
        self.session_id = session_id
        self.max_readings = max_readings
        self.next_seq = 0
        self._groups: dict[str, tuple[AssetPath, list[str]]] = {}
        self._pending = 0
        self._head = _envelope_head(gateway_id, session_id)

    def __len__(self) -> int:
        """Readings collected and not yet taken."""
        return self._pending

    def add(self, reading: Reading) -> None:
        """One reading as a model (the slow path: health of a source, tests)."""
        group = self._group(reading.asset.key, reading.asset)
        group.append(reading.model_dump_json(exclude_none=True))
        self._pending += 1

    def add_json(self, machine: MachineJson, readings: list[str]) -> None:
        """Readings of one machine as JSON text (edge_agent.reading_json)."""
        self._group(machine.key, machine.asset).extend(readings)
        self._pending += len(readings)

    def _group(self, key: str, asset: AssetPath) -> list[str]:
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = (asset, [])
        return group[1]

    def take(self, sent_at: datetime) -> Iterator[EncodedBatch]:
        """The batches of everything collected so far: one per machine (more if it has more
        than `max_readings`), machines in order of their first reading, readings in arrival
        order. Lazily, so that a caller storing them as they come holds few at a time; each
        machine's readings are released once its batches are made."""
        groups, self._groups, self._pending = self._groups, {}, 0
        sent = timestamp_json(sent_at)
        while groups:
            asset, items = groups.pop(next(iter(groups)))
            for start in range(0, len(items), self.max_readings):
                chunk = items[start : start + self.max_readings]
                yield EncodedBatch(self.next_seq, asset, self._payload(sent, chunk), len(chunk))
                self.next_seq += 1

    def _payload(self, sent_at: str, readings: list[str]) -> bytes:
        # `readings` is the envelope's last field, so it goes just before the closing brace.
        joined = ",".join(readings)
        return f'{self._head}{self.next_seq},"sent_at":{sent_at},"readings":[{joined}]}}'.encode()


def _envelope_head(gateway_id: str, session_id: str) -> str:
    """A batch's JSON up to its `seq`, as the model writes it (checked here, once: the fields
    after it must be `seq` and `sent_at`, in that order)."""
    probe = ReadingBatch.model_construct(
        gateway_id=gateway_id, session_id=session_id, seq=0, sent_at=_PROBE_TS, readings=[]
    ).model_dump_json(exclude={"readings"}, exclude_none=True)
    end = f'0,"sent_at":{timestamp_json(_PROBE_TS)}}}'
    if not probe.endswith(end):
        raise RuntimeError(f"ReadingBatch's JSON no longer ends in seq and sent_at: {probe}")
    return probe[: -len(end)]
