"""The writer's defences against what one message can do (issue 13): the series limit per plant,
conflicting duplicates, figures InfluxDB can always take, and an unexpected exception that sends
one message to the DLQ instead of stopping the writer."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.checks.checker import Checked, Checker, Limits
from ingest.checks.identity import Origin
from ingest.config import IngestConfig
from ingest.ledger.service import INFLUX_INT_MAX, figures_line
from ingest.ledger.state import GatewayLedger, SeqRecord
from ingest.normalize.units import KNOWN_UNITS
from ingest.writer.duplicates import BatchDigests, Seen
from ingest.writer.poll import Preparer
from plantmesh.config import validate_config
from plantmesh.contracts import SEQ_MAX
from plantmesh.dead_letters import Rejection, RejectionLog
from plantmesh.topics import HEADER_DLQ_DETAIL, HEADER_DLQ_REASON, DlqReason

NOW = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
TS = "2026-01-01T00:00:00Z"
NO_TIME_BOUNDS = Limits(max_past_s=None, max_future_s=None)


def batch(*signals: str, plant: str = "p1", seq: int = 1, value: float = 1.0) -> bytes:
    readings = [
        {
            "asset": {"plant": plant, "area": "a", "line": "l", "machine": "m1"},
            "signal": signal,
            "value": value,
            "source_ts": TS,
            "gateway_ts": TS,
        }
        for signal in signals
    ]
    envelope = {"gateway_id": "gw", "session_id": "s1", "seq": seq, "sent_at": TS}
    return json.dumps(envelope | {"readings": readings}).encode()


@pytest.mark.parametrize("clean", [True, False])
def test_a_plant_beyond_its_series_limit_gets_series_limit_and_others_flow(clean: bool) -> None:
    checker = Checker(NO_TIME_BOUNDS, clean=clean, max_series_per_plant=2)
    first = checker.check(batch("s1", "s2"), NOW)
    assert isinstance(first, Checked)
    assert first.bad == []
    again = checker.check(batch("s1", "s2", "s3"), NOW)  # known series still pass
    assert isinstance(again, Checked)
    assert len(again.lines) == 2
    [over] = again.bad
    assert (over.index, over.rejection.reason) == (2, DlqReason.SERIES_LIMIT)
    other = checker.check(batch("s3", plant="p2"), NOW)
    assert isinstance(other, Checked)
    assert other.bad == []


def test_the_known_units_cover_what_plants_and_the_demo_report() -> None:
    demo = {"degC", "mm/s", "A", "rpm", "bar", "m/min", "m3/h", "kWh", "%", "1", "parts", "Nm"}
    common = {"degF", "K", "mbar", "Pa", "kPa", "MPa", "psi", "m/s", "g", "Hz", "mA", "V", "kV"}
    more = {"W", "kW", "l/min", "kg", "t", "mm", "m", "N", "s", "ms", "spm"}
    assert demo | common | more <= KNOWN_UNITS
    assert all(len(unit) <= 16 for unit in KNOWN_UNITS)  # every `unit` tag value is short


def test_exact_duplicates_pass_and_conflicting_ones_are_told_apart() -> None:
    digests = BatchDigests(2)
    assert digests.see("gw", "s1", 1, ["a"]) is Seen.NEW
    assert digests.see("gw", "s1", 1, ["a"]) is Seen.SAME
    assert digests.see("gw", "s1", 1, ["b"]) is Seen.CONFLICT
    assert digests.see("gw", "s1", 2, ["b"]) is Seen.NEW
    assert digests.see("gw", "s1", 3, ["c"]) is Seen.NEW  # the window forgets seq 1
    assert len(digests) == 2
    assert digests.see("gw", "s1", 1, ["b"]) is Seen.NEW
    assert BatchDigests(0).see("gw", "s1", 1, ["a"]) is Seen.NEW


def test_conflicts_are_counted_apart_and_survive_a_snapshot() -> None:
    ledger = GatewayLedger("p1", "gw")
    ledger.add(SeqRecord("p1", "gw", "s1", 0, 3), 1000.0)
    conflict = SeqRecord.from_bytes(SeqRecord("p1", "gw", "s1", 0, 3, conflict=True).to_bytes())
    ledger.add(conflict, 1001.0)
    figures = GatewayLedger.from_bytes(ledger.to_bytes()).figures()
    assert (figures.received, figures.duplicates, figures.conflicts) == (1, 0, 1)
    assert "conflicts=1i" in figures_line(ledger, 0)


def test_old_snapshots_without_conflicts_still_load() -> None:
    data = json.loads(GatewayLedger("p1", "gw").to_bytes())
    data["retired"] = [1, 1, 0, 5]
    assert GatewayLedger.from_bytes(json.dumps(data).encode()).figures().expected == 1


def test_figures_stay_inside_influxdbs_integers_whatever_the_sequence_numbers() -> None:
    ledger = GatewayLedger("p1", "gw")
    for session in range(1100):  # 1100 x 2**53 > 2**63
        ledger.add(SeqRecord("p1", "gw", f"s{session}", SEQ_MAX, 1), 1000.0)
    line = figures_line(ledger, 0)
    assert f"batches_expected={INFLUX_INT_MAX}i" in line
    assert f"batches_missing={INFLUX_INT_MAX}i" in line


class _Record:
    def __init__(self, value: bytes, offset: int) -> None:
        self.topic, self.partition, self.offset = "raw", 0, offset
        self.key, self.value, self.headers = b"p1/m1", value, []


def _preparer(**validation: Any) -> Preparer:
    config = validate_config(IngestConfig, {"writer": {"validation": validation}})
    return Preparer(config, RejectionLog(logging.getLogger(__name__)))


def _reasons(poll: Any) -> list[str]:
    return [dict(out.headers)[HEADER_DLQ_REASON].decode() for out in poll.outgoing]


async def test_an_unexpected_exception_dead_letters_that_message_and_the_rest_flows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    preparer = _preparer(max_past_s=None, max_future_s=None)
    check = preparer._checker.check

    def sometimes_broken(
        value: bytes | None, now: datetime, now_ns: int, origin: Origin | None
    ) -> Checked | Rejection:
        if value is not None and b'"seq":2,' in value.replace(b" ", b""):
            raise KeyError("surprise")
        return check(value, now, now_ns, origin)

    monkeypatch.setattr(preparer._checker, "check", sometimes_broken)
    records = [_Record(batch("t", seq=seq), seq) for seq in (1, 2, 3)]
    poll = await preparer.prepare({"tp": records})  # type: ignore[dict-item]
    assert [item.record.offset for item in poll.good] == [1, 3]
    assert _reasons(poll) == ["internal_error"]
    assert dict(poll.outgoing[0].headers)[HEADER_DLQ_DETAIL].startswith(b"KeyError")
    assert len(poll.sequences) == 2


async def test_a_replay_with_other_content_is_refused_and_told_to_the_ledger() -> None:
    preparer = _preparer(max_past_s=None, max_future_s=None)
    records = [
        _Record(batch("t", seq=1, value=1.0), 0),
        _Record(batch("t", seq=1, value=1.0), 1),  # at-least-once: the same again
        _Record(batch("t", seq=1, value=9.0), 2),  # same seq, other values
    ]
    poll = await preparer.prepare({"tp": records})  # type: ignore[dict-item]
    assert [item.record.offset for item in poll.good] == [0, 1]
    assert _reasons(poll) == ["conflicting_duplicate"]
    told = [SeqRecord.from_bytes(out.value) for out in poll.sequences]
    assert [record.conflict for record in told] == [False, False, True]
