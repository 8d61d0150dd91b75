"""Batches seen before, by gateway, session and sequence number."""

from __future__ import annotations

import itertools
import random

from hypothesis import given
from hypothesis import strategies as st

from alerting.dedupe import SESSIONS_PER_GATEWAY, SeenBatches, SeqRanges


def test_a_live_session_is_one_range_and_a_replayed_buffer_fills_its_gap() -> None:
    ranges = SeqRanges()
    assert all(ranges.add(n) for n in range(10))
    assert all(ranges.add(n) for n in range(20, 25))
    assert ranges.ranges == [(0, 9), (20, 24)]
    assert all(ranges.add(n) for n in range(10, 20))
    assert ranges.ranges == [(0, 24)]
    assert not ranges.add(7)


@given(st.lists(st.integers(0, 60), max_size=200))
def test_ranges_behave_as_a_set(numbers: list[int]) -> None:
    ranges, seen = SeqRanges(), set()
    for n in numbers:
        assert ranges.add(n) == (n not in seen)
        seen.add(n)
    expanded = {n for lo, hi in ranges.ranges for n in range(lo, hi + 1)}
    assert expanded == seen
    pairs = ranges.ranges
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(pairs))


def test_sessions_and_gateways_are_apart_and_old_sessions_are_forgotten() -> None:
    seen = SeenBatches()
    assert seen.first_time("gw-1", "s1", 0)
    assert seen.first_time("gw-2", "s1", 0)
    assert seen.first_time("gw-1", "s2", 0)
    assert not seen.first_time("gw-1", "s1", 0)
    assert seen.duplicates == 1
    for i in range(SESSIONS_PER_GATEWAY):
        seen.first_time("gw-1", f"new-{i}", 0)
    assert seen.first_time("gw-1", "s1", 0)  # forgotten: a session that old is over


def test_shuffled_delivery_with_duplicates_passes_each_batch_once() -> None:
    rng = random.Random(7)
    sent = [n for n in range(500) for _ in range(rng.choice((1, 2, 3)))]
    rng.shuffle(sent)
    seen = SeenBatches()
    passed = [n for n in sent if seen.first_time("gw", "s", n)]
    assert sorted(passed) == list(range(500))
    assert seen.duplicates == len(sent) - 500
