from __future__ import annotations

from datetime import UTC, datetime

from edge_agent.batching import Batcher
from plantmesh.contracts import AssetPath, Reading

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def reading(machine: str, value: float, signal: str = "temp") -> Reading:
    return Reading(
        asset=AssetPath(plant="p", area="a", line="l", machine=machine),
        signal=signal,
        value=value,
        source_ts=NOW,
        gateway_ts=NOW,
    )


def test_one_batch_per_machine_in_order_with_consecutive_seq() -> None:
    batcher = Batcher("gw", "s1")
    first = batcher.make_batches(
        [reading("m1", 1), reading("m2", 2), reading("m1", 3), reading("m3", 4)], NOW
    )
    assert [b.readings[0].asset.machine for b in first] == ["m1", "m2", "m3"]
    assert [r.value for r in first[0].readings] == [1.0, 3.0]
    assert [b.seq for b in first] == [0, 1, 2]
    second = batcher.make_batches([reading("m2", 5)], NOW)
    assert [b.seq for b in second] == [3]  # seq runs across intervals and machines
    assert all(b.gateway_id == "gw" and b.session_id == "s1" for b in first + second)
    assert batcher.make_batches([], NOW) == []


def test_large_intervals_are_split_into_several_batches() -> None:
    batcher = Batcher("gw", "s1", max_readings=2)
    batches = batcher.make_batches([reading("m1", float(i)) for i in range(5)], NOW)
    assert [len(b.readings) for b in batches] == [2, 2, 1]
    assert [b.seq for b in batches] == [0, 1, 2]
    assert [r.value for b in batches for r in b.readings] == [0.0, 1.0, 2.0, 3.0, 4.0]
