"""Data-completeness events: a gateway's sequence numbers show batches that never arrived.

Ingest's completeness ledger raises `gap_open` once a gap has stayed open longer than its
configured time, and `gap_closed` when late data (a gateway draining its buffer) filled it.
Alerting can escalate them like any other alert; the key on Kafka is `plant/gateway_id`.
"""

from __future__ import annotations

from enum import StrEnum

from plantmesh.contracts.common import (
    SCHEMA_VERSION,
    AwareDatetime,
    Name,
    NonNegativeInt,
    SchemaVersion,
    SessionId,
    WireModel,
)


class CompletenessEventKind(StrEnum):
    GAP_OPEN = "gap_open"
    GAP_CLOSED = "gap_closed"


class CompletenessEvent(WireModel):
    schema_version: SchemaVersion = SCHEMA_VERSION
    kind: CompletenessEventKind
    plant: Name
    gateway_id: Name
    session_id: SessionId
    first_seq: NonNegativeInt
    """The gap's first missing sequence number, as detected."""
    last_seq: NonNegativeInt
    missing_batches: NonNegativeInt
    """Batches of the gap still missing when the event was raised (0 for gap_closed)."""
    detected_at: AwareDatetime
    """When ingest first saw a sequence number beyond the gap (its wall clock)."""
    at: AwareDatetime
    """When the event was raised."""
