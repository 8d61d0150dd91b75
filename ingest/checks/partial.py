"""The partial tier: a batch with readings the contract refuses, checked reading by reading.

Whole-batch validation only says that a batch is bad; the writer must also know which readings
are, so that one bad reading never hides the good ones. The envelope (the contract's
BatchHeader) is validated first: a broken one rejects the message as a whole. Then each reading
on its own against the contract's Reading, whose error messages go to the DLQ with the envelope
and that reading alone (replayable once fixed) and its index in the batch. The good readings go
on to the conforming tier's per-reading checks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import pydantic_core
from pydantic import Field, ValidationError

from ingest.checks.conforming import place_readings
from ingest.checks.outcome import BadReading, Checked, Limits, Tier, isolate, rejection_of
from ingest.checks.series import SeriesPlans
from ingest.checks.wire_schema import WireBatch, WireReading
from plantmesh.contracts import BatchHeader, Reading
from plantmesh.dead_letters import Rejection
from plantmesh.topics import DlqReason


class Envelope(BatchHeader):
    """A ReadingBatch whose readings are not looked at yet."""

    readings: Annotated[list[Any], Field(min_length=1)]


def check_partial(
    value: bytes, now: datetime, limits: Limits, plans: SeriesPlans
) -> Checked | Rejection:
    try:
        envelope = Envelope.model_validate(pydantic_core.from_json(value))
    except ValidationError as exc:
        return rejection_of(exc)
    except ValueError as exc:  # from_json: not JSON after all
        return Rejection(DlqReason.MALFORMED_JSON, str(exc))
    good: list[WireReading] = []
    positions: list[int] = []
    bad: list[BadReading] = []
    for index, raw in enumerate(envelope.readings):
        try:
            reading = Reading.model_validate(raw)
        except ValidationError as exc:
            rejection = rejection_of(exc, f"readings[{index}].")
            bad.append(BadReading(index, isolate(value, index), rejection))
            continue
        good.append(reading.model_dump())  # type: ignore[arg-type]
        positions.append(index)
    wire: WireBatch = envelope.model_dump()  # type: ignore[assignment]
    wire["readings"] = good
    checked = place_readings(wire, value, now, limits, plans, Tier.PARTIAL, positions)
    checked.received = len(envelope.readings)
    checked.bad[:0] = bad
    checked.changed = True
    return checked
