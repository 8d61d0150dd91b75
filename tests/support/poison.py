"""Poison messages for the alerting consumers (what one message can hold: malformed JSON, the
wrong shape, contract-valid extremes), each with the reason the consumer must skip it for, and
the consumer lag a test waits on to see the partitions moved past them."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from plantmesh.contracts import AlertEvent, IncidentUpdate, encode
from plantmesh.topics import HEADER_MACHINE_CLASS, HEADER_RECEIVED_AT
from tests.support.kafka import kafka_options, partitions_of

Headers = list[tuple[str, bytes]]
EARLIEST_TEXT = "0001-01-01T00:00:00Z"
LATEST_TEXT = "9999-12-31T23:59:59.999999Z"


@dataclass(frozen=True)
class Poison:
    """One message for one input: `topic` names the input (a Topics attribute)."""

    what: str
    topic: str
    value: bytes | None
    reason: str | None
    """Why it is skipped; None: it is contract-valid and handled as usual."""
    headers: Headers = field(default_factory=list)
    key: bytes | None = b"plant-x/poison"


def reasons(poisons: Iterable[Poison]) -> Counter[str]:
    return Counter(p.reason for p in poisons if p.reason is not None)


def _json(data: Any) -> bytes:
    return json.dumps(data).encode()


def _changed(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `base` with `path` (dotted, list indexes as numbers) set to `value`."""
    data: Any = json.loads(json.dumps(base))
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    result: dict[str, Any] = data
    return result


def batch(
    seq: int, ts: str, *, signal: str = "bearing_temp", value: Any = 80.0, gateway: str = "gw-x"
) -> dict[str, Any]:
    """A ReadingBatch of one reading of plant-x/area/line/machine-x (no rule's machine)."""
    reading = {
        "asset": {"plant": "plant-x", "area": "area", "line": "line", "machine": "machine-x"},
        "signal": signal,
        "value": value,
        "source_ts": ts,
        "gateway_ts": ts,
    }
    return {
        "gateway_id": gateway,
        "session_id": "s",
        "seq": seq,
        "sent_at": ts,
        "readings": [reading],
    }


def status(state: str, at: str) -> dict[str, Any]:
    return {"gateway_id": "gw-x", "plant": "plant-x", "session_id": "s", "state": state, "at": at}


def gap(detected_at: str, kind: str = "gap_open") -> dict[str, Any]:
    return {
        "kind": kind, "plant": "plant-x", "gateway_id": "gw-x", "session_id": "s",
        "first_seq": 1, "last_seq": 2**60, "missing_batches": 2**60,
        "detected_at": detected_at, "at": "2026-01-01T00:00:00Z",
    }  # fmt: skip


def detection_poison(ts: str) -> list[Poison]:
    """For the detection's three inputs; `ts`: a time inside the test's data that moves no
    event time (the contract-valid extremes are evaluated and must change no decision)."""
    n, s, c = "telemetry_normalized", "gateway_status", "telemetry_completeness"
    good = batch(1, ts)
    return [
        Poison("not JSON", n, b"{not json", "malformed_json"),
        Poison("tombstone", n, None, "empty_payload"),
        Poison("empty, without a key", n, b"", "empty_payload", key=None),
        Poison("a JSON array", n, b"[1, 2]", "schema_mismatch"),
        Poison("a batch missing fields", n, b'{"gateway_id": "gw-x"}', "schema_mismatch"),
        Poison("NaN value", n, _json(batch(6, ts, value=float("nan"))), "schema_mismatch"),
        Poison("unknown quality", n, _json(_changed(good, "readings.0.quality", "excellent")),
               "schema_mismatch"),
        Poison("schema_version 2", n, _json({**good, "schema_version": 2}), "schema_mismatch"),
        Poison("seq beyond 2**53-1", n, _json(batch(2**53, ts)), "schema_mismatch"),
        Poison("year 1", n, _json(batch(2, EARLIEST_TEXT)), "timestamp_out_of_range"),
        Poison("year 9999", n, _json(batch(3, LATEST_TEXT)), "timestamp_out_of_range"),
        Poison("year 1 at +23:59", n, _json(batch(4, "0001-01-01T00:00:00+23:59")),
               "timestamp_out_of_range"),
        Poison("a machine class that is no name", n, _json(batch(5, ts)), "schema_mismatch",
               headers=[(HEADER_MACHINE_CLASS, b"no such class \xff")]),
        Poison("seq 2**53-1, 200 kB of text", n,
               _json(batch(2**53 - 1, ts, signal="label", value="x" * 200_000)), None),
        Poison("a death with a zone-less receipt time", s, _json(status("death", ts)), None,
               headers=[(HEADER_RECEIVED_AT, b"2026-01-01T00:00:01")]),
        Poison("a birth in year 9999", s, _json(status("birth", LATEST_TEXT)),
               "timestamp_out_of_range"),
        Poison("unknown state", s, _json(status("zombie", ts)), "schema_mismatch"),
        Poison("tombstone", s, None, "empty_payload"),
        Poison("a gap detected in year 1", c, _json(gap(EARLIEST_TEXT)), "timestamp_out_of_range"),
        Poison("unknown gap kind", c, _json(gap(ts, "gap_maybe")), "schema_mismatch"),
    ]  # fmt: skip


def alert_event_poison(base: AlertEvent, topic: str = "alert_events") -> list[Poison]:
    """Alert events a consumer of alerts.events (or alerts.by_class) must skip, and one
    contract-valid extreme it must take (a 300 kB summary: recorded, correlated as usual).
    `base`: a valid event of no incident (the skipped ones are copies of it)."""
    good = json.loads(encode(base))

    def bad(what: str, path: str, value: Any, reason: str) -> Poison:
        return Poison(what, topic, _json(_changed(good, path, value)), reason)

    point = [{"ts": good["at"], "value": float("nan")}]
    return [
        Poison("not JSON", topic, b"{not json", "malformed_json"),
        Poison("a number for an id", topic, b'{"alert_id": 7}', "schema_mismatch"),
        bad("unknown kind", "kind", "exploded", "schema_mismatch"),
        bad("schema_version 2", "schema_version", 2, "schema_mismatch"),
        bad("a 100-character id", "alert_id", "L" * 100, "schema_mismatch"),
        bad("a NUL in the id", "alert_id", "a\x00b", "schema_mismatch"),
        bad("a NUL in the rule version", "rule_version", "v\x00", "schema_mismatch"),
        bad("a NaN evidence point", "evidence.points", point, "non_finite_value"),
        bad("an infinite parameter", "evidence.parameters", {"x": float("inf")},
            "non_finite_value"),
        bad("year 1 at +01:00", "at", "0001-01-01T00:00:00+01:00", "timestamp_out_of_range"),
        bad("year 9999 at -01:00", "at", "9999-12-31T23:59:59-01:00", "timestamp_out_of_range"),
    ]  # fmt: skip


def incident_update_poison(base: IncidentUpdate) -> list[Poison]:
    """Incident updates the alarm service must skip. `base`: a valid update."""
    good = json.loads(encode(base))
    topic = "incident_events"

    def bad(what: str, path: str, value: Any, reason: str) -> Poison:
        return Poison(what, topic, _json(_changed(good, path, value)), reason)

    return [
        Poison("not JSON", topic, b"{not json", "malformed_json"),
        bad("version 2**31", "version", 2**31, "schema_mismatch"),
        bad("version 2**70", "version", 2**70, "schema_mismatch"),
        bad("an id no alarm can carry", "incident_id", "has a space", "schema_mismatch"),
        bad("a NaN in the explanation", "explanation.x", float("nan"), "non_finite_value"),
        bad("a NaN term", "terms.window_s", float("nan"), "non_finite_value"),
        bad("a 100-character member id", "members.0.alert_ids", ["L" * 100], "schema_mismatch"),
        bad("a member raised in year 1", "members.0.raised_at", EARLIEST_TEXT,
            "timestamp_out_of_range"),
    ]  # fmt: skip


async def lag(bootstrap: str, group_id: str, topics: Iterable[str]) -> int:
    """Records on `topics` the group has not committed past (a partition it never committed
    counts whole)."""
    partitions: list[TopicPartition] = []
    for topic in topics:
        partitions += await partitions_of(bootstrap, topic)
    admin = AIOKafkaAdminClient(**kafka_options(bootstrap))
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group_id)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(**kafka_options(bootstrap))
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    behind = 0
    for tp in partitions:
        done = committed.get(tp)
        behind += ends[tp] - (done.offset if done is not None and done.offset >= 0 else 0)
    return behind
