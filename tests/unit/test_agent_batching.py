from __future__ import annotations

from datetime import UTC, datetime

from edge_agent.batching import Batcher, EncodedBatch
from plantmesh.contracts import AssetPath, Reading, ReadingBatch, decode, encode

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def reading(machine: str, value: float, signal: str = "temp", unit: str | None = None) -> Reading:
    return Reading(
        asset=AssetPath(plant="p", area="a", line="l", machine=machine),
        signal=signal,
        value=value,
        unit=unit,
        source_ts=NOW,
        gateway_ts=NOW,
    )


def batches(batcher: Batcher, readings: list[Reading]) -> list[EncodedBatch]:
    for item in readings:
        batcher.add(item)
    assert len(batcher) == len(readings)
    taken = list(batcher.take(NOW))
    assert len(batcher) == 0
    return taken


def test_one_batch_per_machine_in_order_with_consecutive_seq() -> None:
    batcher = Batcher("gw", "s1")
    first = batches(
        batcher, [reading("m1", 1), reading("m2", 2), reading("m1", 3), reading("m3", 4)]
    )
    assert [b.asset.machine for b in first] == ["m1", "m2", "m3"]
    assert [r.value for r in decode(ReadingBatch, first[0].payload).readings] == [1.0, 3.0]
    assert [b.readings for b in first] == [2, 1, 1]
    assert [b.seq for b in first] == [0, 1, 2]
    second = batches(batcher, [reading("m2", 5)])
    assert [b.seq for b in second] == [3]  # seq runs across intervals and machines
    decoded = [decode(ReadingBatch, b.payload) for b in first + second]
    assert [d.seq for d in decoded] == [0, 1, 2, 3]
    assert all(d.gateway_id == "gw" and d.session_id == "s1" for d in decoded)
    assert batches(batcher, []) == []


def test_large_intervals_are_split_into_several_batches() -> None:
    batcher = Batcher("gw", "s1", max_readings=2)
    made = batches(batcher, [reading("m1", float(i)) for i in range(5)])
    assert [b.readings for b in made] == [2, 2, 1]
    assert [b.seq for b in made] == [0, 1, 2]
    values = [r.value for b in made for r in decode(ReadingBatch, b.payload).readings]
    assert values == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_payload_is_exactly_what_encoding_the_batch_gives() -> None:
    items = [reading("m1", 1.5, unit="°C"), reading("m1", 2.0), reading("m1", 0.0, "on")]
    [made] = batches(Batcher("gw", "s1"), items)
    expected = ReadingBatch(gateway_id="gw", session_id="s1", seq=0, sent_at=NOW, readings=items)
    assert made.payload == encode(expected)
