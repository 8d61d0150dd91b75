"""What the alerting service reads, turned into engine calls: normalized reading batches (with
the machine class the writer stamped on them), gateway births and deaths, and the gaps ingest's
completeness ledger finds. One topic each; the record's topic says which.

A decoded message that alerting cannot use (alerting/poison.py: a time out of range, a machine
class header that is not a name) raises RefusedError before it reaches the engine, so it changes
no rule state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from aiokafka import ConsumerRecord

from alerting.engine import Engine
from alerting.poison import RefusedError, batch_problem, in_range, times_problem
from plantmesh.contracts import (
    AlertEvent,
    CompletenessEvent,
    GatewayState,
    GatewayStatus,
    ReadingBatch,
    decode,
)
from plantmesh.dead_letters import Rejection, header
from plantmesh.topics import HEADER_MACHINE_CLASS, HEADER_RECEIVED_AT, Topics


def input_topics(topics: Topics) -> tuple[str, ...]:
    return (topics.telemetry_normalized, topics.gateway_status, topics.telemetry_completeness)


def _text(headers: Sequence[tuple[str, bytes]], name: str) -> str | None:
    value = header(headers, name)
    return value.decode(errors="replace") if value else None


def _death_time(status: GatewayStatus, headers: Sequence[tuple[str, bytes]]) -> datetime:
    """When a death became known. An MQTT last will carries the time it was set (at connect),
    so the bridge's receipt time, when later, is the better one."""
    received = _text(headers, HEADER_RECEIVED_AT)
    if status.state is not GatewayState.DEATH or received is None:
        return status.at
    try:
        known = datetime.fromisoformat(received)
        # A header without a zone (TypeError comparing it) or out of range is not a better one.
        return max(status.at, known) if in_range(known) else status.at
    except (ValueError, TypeError):
        return status.at


def evaluate(
    engine: Engine, topics: Topics, record: ConsumerRecord[bytes, bytes]
) -> tuple[list[AlertEvent], int]:
    """The events one record causes, and the readings it carried. Raises DecodeError for a
    value that is not its topic's contract, RefusedError for one alerting cannot use."""
    value = record.value or b""
    headers = record.headers or ()
    if record.topic == topics.gateway_status:
        status = decode(GatewayStatus, value)
        _refuse_if(times_problem(("at", status.at)))
        return engine.gateway_status(status, _death_time(status, headers)), 0
    if record.topic == topics.telemetry_completeness:
        gap = decode(CompletenessEvent, value)
        _refuse_if(times_problem(("detected_at", gap.detected_at)))
        return engine.completeness(gap), 0
    batch = decode(ReadingBatch, value)
    machine_class = _text(headers, HEADER_MACHINE_CLASS)
    _refuse_if(batch_problem(batch, machine_class))
    events = engine.process_batch(batch, machine_class)
    return events, len(batch.readings)


def _refuse_if(problem: Rejection | None) -> None:
    if problem is not None:
        raise RefusedError(problem)
