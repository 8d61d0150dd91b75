"""The completeness ledger's state: which sequence numbers of each gateway session arrived.

Definitions (per gateway session; a gateway's figures add up its sessions):
- expected batches = highest sequence number seen + 1 (an edge agent numbers the batches of a
  session 0, 1, 2, ...), so batches lost at the start of a session count too;
- received batches = distinct sequence numbers seen; missing = expected - received;
- duplicates = batches whose sequence number had been seen already (a gateway resend, or the
  pipeline redelivering after a crash: harmless to InfluxDB, counted all the same);
- conflicts = batches refused by the writer as `conflicting_duplicate` (a seen sequence number
  with other content): counted apart, never as received;
- readings received = readings carried by the distinct batches. A missing batch's readings are
  unknown; `readings_missing_estimate` = missing x mean readings per received batch.
A gap is a run of missing sequence numbers below the highest one seen; it is detected when the
first number beyond it arrives, alerts once it stayed open `gap_alert_after_s`, and closes when
late data filled every number in it.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from plantmesh.contracts import CompletenessEvent, CompletenessEventKind


@dataclass(frozen=True)
class SeqRecord:
    """What the writer tells the ledger about one batch (telemetry.sequences)."""

    plant: str
    gateway_id: str
    session_id: str
    seq: int
    readings: int
    conflict: bool = False
    """The writer refused this batch as a conflicting duplicate."""

    @property
    def key(self) -> bytes:
        return f"{self.plant}/{self.gateway_id}".encode()

    def to_bytes(self) -> bytes:
        # One per batch on the writer's hot path: no asdict (it deep-copies).
        record: dict[str, object] = {
            "plant": self.plant,
            "gateway_id": self.gateway_id,
            "session_id": self.session_id,
            "seq": self.seq,
            "readings": self.readings,
        }
        if self.conflict:
            record["conflict"] = True
        return orjson.dumps(record)

    @classmethod
    def from_bytes(cls, value: bytes) -> SeqRecord:
        data = json.loads(value)
        return cls(
            str(data["plant"]),
            str(data["gateway_id"]),
            str(data["session_id"]),
            int(data["seq"]),
            int(data["readings"]),
            data.get("conflict") is True,
        )


@dataclass
class Gap:
    first: int
    last: int
    missing: int
    detected_at: float
    """Epoch seconds (wall clock of the ledger that saw it)."""
    alerted: bool = False


@dataclass
class Session:
    session_id: str
    received: list[list[int]] = field(default_factory=list)
    """Disjoint, sorted, inclusive [first, last] runs of received sequence numbers."""
    max_seq: int = -1
    duplicates: int = 0
    conflicts: int = 0
    readings: int = 0
    gaps: list[Gap] = field(default_factory=list)
    last_seen: float = 0.0

    @property
    def expected(self) -> int:
        return self.max_seq + 1

    @property
    def distinct(self) -> int:
        return sum(last - first + 1 for first, last in self.received)

    def _insert(self, seq: int) -> bool:
        """Add `seq` to the runs; False if it was there already."""
        runs = self.received
        i = bisect.bisect_right(runs, seq, key=lambda run: run[0]) - 1
        if i >= 0 and runs[i][0] <= seq <= runs[i][1]:
            return False  # seen already
        joins_left = i >= 0 and runs[i][1] == seq - 1
        joins_right = i + 1 < len(runs) and runs[i + 1][0] == seq + 1
        if joins_left and joins_right:
            runs[i][1] = runs[i + 1][1]
            del runs[i + 1]
        elif joins_left:
            runs[i][1] = seq
        elif joins_right:
            runs[i + 1][0] = seq
        else:
            runs.insert(i + 1, [seq, seq])
        return True

    def add(self, seq: int, readings: int, now: float) -> list[Gap]:
        """Record one batch; return the gaps it closed."""
        self.last_seen = now
        if not self._insert(seq):
            self.duplicates += 1
            return []
        self.readings += readings
        if seq > self.max_seq:
            if seq > self.max_seq + 1:
                missing = seq - self.max_seq - 1
                self.gaps.append(Gap(self.max_seq + 1, seq - 1, missing, now))
            self.max_seq = seq
            return []
        for gap in self.gaps:
            if gap.first <= seq <= gap.last:
                gap.missing -= 1
                if gap.missing == 0:
                    self.gaps.remove(gap)
                    return [gap]
                if not gap.alerted:
                    # Not published yet: keep its bounds tight (batches of one gateway arrive
                    # out of order across partitions, so a gap often shrinks at its edges).
                    while self._has(gap.first):
                        gap.first += 1
                    while self._has(gap.last):
                        gap.last -= 1
                break
        return []

    def _has(self, seq: int) -> bool:
        runs = self.received
        i = bisect.bisect_right(runs, seq, key=lambda run: run[0]) - 1
        return i >= 0 and runs[i][0] <= seq <= runs[i][1]


@dataclass(frozen=True)
class Figures:
    expected: int
    received: int
    duplicates: int
    readings: int
    open_gaps: int
    conflicts: int = 0

    @property
    def missing(self) -> int:
        return self.expected - self.received

    @property
    def readings_missing_estimate(self) -> float:
        return self.missing * self.readings / self.received if self.received else 0.0


@dataclass
class GatewayLedger:
    """Everything the ledger knows of one gateway; the unit of a snapshot on ingest.ledger."""

    plant: str
    gateway_id: str
    sessions: dict[str, Session] = field(default_factory=dict)
    retired: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])
    """expected, received, duplicates, readings, conflicts of sessions forgotten since."""
    partition: int = -1
    """The telemetry.sequences partition this gateway's records arrive on (Kafka's choice)."""
    applied: int = -1
    """The telemetry.sequences offset of the last record applied: a replay after a restart
    skips what the snapshot already holds, so nothing counts twice."""
    pending: list[CompletenessEvent] = field(default_factory=list)
    """Events raised and not yet published."""

    @property
    def key(self) -> bytes:
        return f"{self.plant}/{self.gateway_id}".encode()

    def add(self, record: SeqRecord, now: float) -> None:
        session = self.sessions.get(record.session_id)
        if session is None:
            session = self.sessions[record.session_id] = Session(record.session_id)
        if record.conflict:
            session.conflicts += 1
            session.last_seen = now
            return
        for gap in session.add(record.seq, record.readings, now):
            if gap.alerted:
                self.pending.append(
                    self._event(CompletenessEventKind.GAP_CLOSED, session, gap, now)
                )

    def check(self, now: float, alert_after_s: float, forget_after_s: float) -> None:
        """Raise `gap_open` for gaps open too long; forget sessions idle too long."""
        for session in list(self.sessions.values()):
            for gap in session.gaps:
                if not gap.alerted and now - gap.detected_at >= alert_after_s:
                    gap.alerted = True
                    self.pending.append(
                        self._event(CompletenessEventKind.GAP_OPEN, session, gap, now)
                    )
            if now - session.last_seen >= forget_after_s:
                for i, value in enumerate(
                    (
                        session.expected,
                        session.distinct,
                        session.duplicates,
                        session.readings,
                        session.conflicts,
                    )
                ):
                    self.retired[i] += value
                del self.sessions[session.session_id]

    def figures(self) -> Figures:
        expected, received, duplicates, readings, conflicts = self.retired
        open_gaps = 0
        for session in self.sessions.values():
            expected += session.expected
            received += session.distinct
            duplicates += session.duplicates
            readings += session.readings
            conflicts += session.conflicts
            open_gaps += len(session.gaps)
        return Figures(expected, received, duplicates, readings, open_gaps, conflicts)

    def _event(
        self, kind: CompletenessEventKind, session: Session, gap: Gap, now: float
    ) -> CompletenessEvent:
        return CompletenessEvent(
            kind=kind,
            plant=self.plant,
            gateway_id=self.gateway_id,
            session_id=session.session_id,
            first_seq=gap.first,
            last_seq=gap.last,
            missing_batches=gap.missing if kind is CompletenessEventKind.GAP_OPEN else 0,
            detected_at=datetime.fromtimestamp(gap.detected_at, UTC),
            at=datetime.fromtimestamp(now, UTC),
        )

    # --- snapshots ------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        data: dict[str, Any] = {
            "plant": self.plant,
            "gateway_id": self.gateway_id,
            "retired": self.retired,
            "applied": self.applied,
            "partition": self.partition,
            "sessions": [asdict(s) for s in self.sessions.values()],
        }
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, value: bytes) -> GatewayLedger:
        data = json.loads(value)
        retired = [int(n) for n in data["retired"]]
        retired += [0] * (5 - len(retired))  # snapshots from before `conflicts` hold four
        ledger = cls(str(data["plant"]), str(data["gateway_id"]), retired=retired)
        ledger.applied = int(data["applied"])
        ledger.partition = int(data["partition"])
        for raw in data["sessions"]:
            gaps = [Gap(**gap) for gap in raw.pop("gaps")]
            session = Session(**raw, gaps=gaps)
            ledger.sessions[session.session_id] = session
        return ledger
