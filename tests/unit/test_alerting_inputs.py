"""The alerting service's three inputs turned into engine calls: reading batches with their
machine class, gateway deaths and births, completeness gaps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from alerting.engine import Engine
from alerting.inputs import evaluate, input_topics
from alerting.rules.stale import StaleRule, StaleRuleConfig
from plantmesh.contracts import (
    AlertEventKind,
    AssetPath,
    CompletenessEvent,
    CompletenessEventKind,
    DecodeError,
    GatewayState,
    GatewayStatus,
    Reading,
    ReadingBatch,
    encode,
)
from plantmesh.topics import HEADER_MACHINE_CLASS, HEADER_RECEIVED_AT, Topics

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TOPICS = Topics("ns")
MILL = AssetPath.parse("plant-a/machining/line3/mill-01")


@dataclass
class Record:
    topic: str
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def stale_engine() -> Engine:
    config = StaleRuleConfig(
        name="silent", type="stale", issue_type="comms-loss", signal="speed", for_s=30.0
    )
    return Engine([StaleRule(config)])


def batch(t: float) -> bytes:
    ts = T0 + timedelta(seconds=t)
    reading = Reading(asset=MILL, signal="speed", value=1.0, source_ts=ts, gateway_ts=ts)
    return encode(
        ReadingBatch(gateway_id="gw-a", session_id="s", seq=int(t), sent_at=ts, readings=[reading])
    )


def status(state: GatewayState, at: datetime, session: str = "s") -> bytes:
    return encode(
        GatewayStatus(gateway_id="gw-a", plant="plant-a", session_id=session, state=state, at=at)
    )


def test_the_service_reads_its_three_topics() -> None:
    assert input_topics(TOPICS) == (
        "ns.telemetry.normalized",
        "ns.gateway.status",
        "ns.telemetry.completeness",
    )


def test_a_batch_brings_its_machine_class_to_the_rules() -> None:
    engine = stale_engine()
    record = Record(TOPICS.telemetry_normalized, batch(0), [(HEADER_MACHINE_CLASS, b"cnc_mill")])
    events, readings = evaluate(engine, TOPICS, record)  # type: ignore[arg-type]
    assert (events, readings) == ([], 1)
    (raised,) = engine.advance(T0 + timedelta(seconds=60))
    assert raised.machine_class == "cnc_mill"
    assert raised.at == T0 + timedelta(seconds=30)


def test_a_last_will_counts_from_when_the_bridge_received_it() -> None:
    engine = stale_engine()
    alive = Record(TOPICS.gateway_status, status(GatewayState.BIRTH, T0))
    assert evaluate(engine, TOPICS, alive) == ([], 0)  # type: ignore[arg-type]
    evaluate(engine, TOPICS, Record(TOPICS.telemetry_normalized, batch(0)))  # type: ignore[arg-type]
    # The will was set at connect (t=0) and published by the broker when the link died (t=20).
    death = Record(
        TOPICS.gateway_status,
        status(GatewayState.DEATH, T0),
        [(HEADER_RECEIVED_AT, b"2026-01-01T00:00:20.000Z")],
    )
    (down,) = evaluate(engine, TOPICS, death)[0]  # type: ignore[arg-type]
    assert down.kind is AlertEventKind.RAISED
    assert down.issue_type == "comms-loss"
    assert down.at == T0 + timedelta(seconds=20)
    assert engine.advance(T0 + timedelta(seconds=90)) == []  # the mill's silence is the outage's
    birth = Record(TOPICS.gateway_status, status(GatewayState.BIRTH, T0 + timedelta(seconds=95)))
    (up,) = evaluate(engine, TOPICS, birth)[0]  # type: ignore[arg-type]
    assert up.kind is AlertEventKind.CLEARED
    assert up.alert_id == down.alert_id


def test_a_retained_death_of_an_earlier_session_is_not_news() -> None:
    """On (re)subscribing, the bridge gets each gateway's retained status: often the death of a
    session long gone. Only a death of the session seen alive (birth or health) raises."""
    engine = stale_engine()
    retained = Record(
        TOPICS.gateway_status,
        status(GatewayState.DEATH, T0 - timedelta(days=1), session="s0"),
        [(HEADER_RECEIVED_AT, b"2026-01-01T00:00:00.000Z")],
    )
    assert evaluate(engine, TOPICS, retained) == ([], 0)  # type: ignore[arg-type]
    assert engine.ignored_stale_deaths == 1
    birth = Record(TOPICS.gateway_status, status(GatewayState.BIRTH, T0, session="s1"))
    assert evaluate(engine, TOPICS, birth) == ([], 0)  # type: ignore[arg-type]
    health = Record(
        TOPICS.gateway_status, status(GatewayState.HEALTH, T0 + timedelta(seconds=5), "s1")
    )
    assert evaluate(engine, TOPICS, health) == ([], 0)  # type: ignore[arg-type]
    assert evaluate(engine, TOPICS, retained) == ([], 0)  # type: ignore[arg-type]
    assert engine.ignored_stale_deaths == 2
    death = Record(
        TOPICS.gateway_status,
        status(GatewayState.DEATH, T0, session="s1"),
        [(HEADER_RECEIVED_AT, b"2026-01-01T00:00:20.000Z")],
    )
    (down,) = evaluate(engine, TOPICS, death)[0]  # type: ignore[arg-type]
    assert (down.kind, down.at) == (AlertEventKind.RAISED, T0 + timedelta(seconds=20))
    assert evaluate(engine, TOPICS, death) == ([], 0)  # type: ignore[arg-type]
    assert engine.ignored_stale_deaths == 2


def test_a_completeness_gap_reaches_the_gateway_rules() -> None:
    engine = stale_engine()
    gap = CompletenessEvent(
        kind=CompletenessEventKind.GAP_OPEN,
        plant="plant-a",
        gateway_id="gw-a",
        session_id="s",
        first_seq=10,
        last_seq=19,
        missing_batches=10,
        detected_at=T0,
        at=T0 + timedelta(seconds=300),
    )
    events, _ = evaluate(engine, TOPICS, Record(TOPICS.telemetry_completeness, encode(gap)))  # type: ignore[arg-type]
    assert [e.kind for e in events] == [AlertEventKind.RAISED]
    assert events[0].evidence.parameters["batches_missing"] == 10


def test_a_record_that_is_not_its_topics_contract_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        evaluate(stale_engine(), TOPICS, Record(TOPICS.gateway_status, batch(0)))  # type: ignore[arg-type]
