"""The completeness ledger's arithmetic: gaps, duplicates, late data, events, snapshots."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.ledger.service import figures_line
from ingest.ledger.state import GatewayLedger, SeqRecord, Session
from plantmesh.contracts import CompletenessEventKind


def record(seq: int, session: str = "s1", readings: int = 10) -> SeqRecord:
    return SeqRecord("plant-a", "gw-1", session, seq, readings)


def feed(ledger: GatewayLedger, seqs: list[int], now: float = 1000.0, session: str = "s1") -> None:
    for seq in seqs:
        ledger.add(record(seq, session), now)


def test_a_complete_session_has_no_gaps() -> None:
    ledger = GatewayLedger("plant-a", "gw-1")
    feed(ledger, [0, 1, 2, 3])
    f = ledger.figures()
    assert (f.expected, f.received, f.missing, f.duplicates, f.readings, f.open_gaps) == (
        4,
        4,
        0,
        0,
        40,
        0,
    )


def test_gaps_duplicates_and_the_start_of_a_session_count() -> None:
    ledger = GatewayLedger("plant-a", "gw-1")
    feed(ledger, [2, 3, 3, 7, 8, 7])
    f = ledger.figures()
    assert f.expected == 9  # seq 0..8
    assert f.received == 4  # 2, 3, 7, 8
    assert f.missing == 5  # 0, 1, 4, 5, 6
    assert f.duplicates == 2
    assert f.open_gaps == 2  # 0-1 and 4-6
    assert f.readings_missing_estimate == 5 * 10.0


def test_an_old_gap_raises_one_event_and_late_data_closes_it() -> None:
    ledger = GatewayLedger("plant-a", "gw-1")
    feed(ledger, [0, 1, 5], now=1000.0)
    ledger.check(now=1100.0, alert_after_s=300, forget_after_s=10**9)
    assert ledger.pending == []  # not old enough yet
    ledger.check(now=1300.0, alert_after_s=300, forget_after_s=10**9)
    [opened] = ledger.pending
    assert opened.kind is CompletenessEventKind.GAP_OPEN
    assert (opened.first_seq, opened.last_seq, opened.missing_batches) == (2, 4, 3)
    assert opened.plant == "plant-a"
    assert opened.gateway_id == "gw-1"
    assert opened.session_id == "s1"
    ledger.pending.clear()
    ledger.check(now=1400.0, alert_after_s=300, forget_after_s=10**9)
    assert ledger.pending == []  # raised once

    feed(ledger, [3, 2], now=5000.0)  # the gateway drains its buffer hours later
    assert ledger.pending == []
    feed(ledger, [4], now=5000.0)
    [closed] = ledger.pending
    assert closed.kind is CompletenessEventKind.GAP_CLOSED
    assert (closed.first_seq, closed.last_seq, closed.missing_batches) == (2, 4, 0)
    f = ledger.figures()
    assert (f.missing, f.open_gaps) == (0, 0)


def test_a_gap_shrinks_at_its_edges_until_it_is_raised() -> None:
    ledger = GatewayLedger("plant-a", "gw-1")
    feed(ledger, [0, 6, 1, 5, 3])  # out of order, as across partitions
    [gap] = ledger.sessions["s1"].gaps
    assert (gap.first, gap.last, gap.missing) == (2, 4, 2)
    ledger.check(now=10**6, alert_after_s=1, forget_after_s=10**9)
    assert (ledger.pending[0].first_seq, ledger.pending[0].last_seq) == (2, 4)
    feed(ledger, [2])
    assert (gap.first, gap.last, gap.missing) == (2, 4, 1)  # published bounds stay


def test_a_gap_filled_before_its_alert_raises_nothing() -> None:
    ledger = GatewayLedger("plant-a", "gw-1")
    feed(ledger, [0, 2, 1])
    ledger.check(now=10**6, alert_after_s=300, forget_after_s=10**9)
    assert ledger.pending == []


def test_sessions_add_up_and_forgotten_sessions_keep_their_figures() -> None:
    ledger = GatewayLedger("plant-a", "gw-1")
    feed(ledger, [0, 1, 3], now=0.0, session="old")
    feed(ledger, [0, 1], now=1000.0, session="new")
    assert ledger.figures().expected == 6
    ledger.check(now=1500.0, alert_after_s=10**9, forget_after_s=1200)
    assert set(ledger.sessions) == {"new"}
    f = ledger.figures()
    assert (f.expected, f.received, f.missing) == (6, 5, 1)
    assert f.open_gaps == 0  # forgotten with its session


def test_snapshot_round_trip() -> None:
    ledger = GatewayLedger("plant-a", "gw-1")
    feed(ledger, [0, 4, 4, 9])
    ledger.check(now=10**6, alert_after_s=1, forget_after_s=10**9)
    ledger.applied = 41
    restored = GatewayLedger.from_bytes(ledger.to_bytes())
    assert restored.figures() == ledger.figures()
    assert restored.applied == 41
    assert restored.sessions["s1"].gaps == ledger.sessions["s1"].gaps
    assert restored.pending == []  # events are published before the snapshot


def test_figures_line() -> None:
    ledger = GatewayLedger("plant-a", "gw-1")
    feed(ledger, [0, 2])
    line = figures_line(ledger, 5)
    assert line.startswith("completeness,gateway=gw-1,plant=plant-a ")
    assert "batches_expected=3i" in line
    assert "batches_missing=1i" in line
    assert line.endswith(" 5")


def test_seq_record_round_trip() -> None:
    original = record(12)
    assert SeqRecord.from_bytes(original.to_bytes()) == original
    assert original.key == b"plant-a/gw-1"


@settings(max_examples=200)
@given(st.lists(st.integers(0, 60), max_size=80))
def test_session_runs_match_a_plain_set(seqs: list[int]) -> None:
    session = Session("s")
    seen: set[int] = set()
    duplicates = 0
    for seq in seqs:
        duplicates += seq in seen
        seen.add(seq)
        session.add(seq, 1, 0.0)
    assert session.distinct == len(seen)
    assert session.duplicates == duplicates
    assert session.expected == (max(seen) + 1 if seen else 0)
    assert sum(gap.missing for gap in session.gaps) == session.expected - len(seen)
    runs = session.received
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(runs))
