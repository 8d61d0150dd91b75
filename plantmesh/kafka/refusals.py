"""What a service does with a message Kafka refused: one decision for every producer.

A refusal is either passing (the broker is down, a leader is moving: send the same message again
after a backoff) or final: the message is larger than the topic takes. A final refusal of a
record batch does not say which of its messages is too large, so each is sent again in a batch
of its own (isolate); one that Kafka still refuses on its own goes to the DLQ as `kafka_rejected`
with its first OVERSIZED_KEEP_BYTES (dead-letter); and a DLQ entry that Kafka refuses on its own
has nowhere left to go: it is dropped, counted and logged as an error (drop), so the partition
moves on instead of retrying it until the service stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from aiokafka.errors import MessageSizeTooLargeError

from plantmesh.dead_letters import OVERSIZED_KEEP_BYTES, Headers, Rejection, dlq_headers
from plantmesh.topics import DlqReason


class Refusal(StrEnum):
    RETRY = "retry"
    """May pass: send the same message again after a backoff."""
    ISOLATE = "isolate"
    """Too large, but in a batch with others: send it again in a record batch of its own."""
    DEAD_LETTER = "dead_letter"
    """Too large on its own: send `dead_letter(...)` to the DLQ instead."""
    DROP = "drop"
    """A DLQ entry too large on its own: give up on it, count it and log it."""


def decide(error: BaseException, *, alone: bool, dead_letter: bool) -> Refusal:
    """`alone`: the message was in a record batch of its own; `dead_letter`: it is a DLQ entry."""
    if not isinstance(error, MessageSizeTooLargeError):
        return Refusal.RETRY
    if not alone:
        return Refusal.ISOLATE
    return Refusal.DROP if dead_letter else Refusal.DEAD_LETTER


@dataclass(slots=True)  # not frozen: the bridge makes one per message, and frozen costs ~0.7 µs
class Outgoing:
    """One message on its way to Kafka."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    rejection: Rejection | None = None
    """Set for a DLQ entry: why it is there."""
    source: str | None = None
    """Where it came from (`mqtt:<topic>` or `<topic>/<partition>/<offset>`), for a DLQ entry."""
    alone: bool = False
    """Send in a record batch of its own: Kafka refused a batch it was in as too large."""

    @property
    def is_dead_letter(self) -> bool:
        return self.rejection is not None


def dead_letter(out: Outgoing, error: BaseException, dlq_topic: str) -> Outgoing:
    """The DLQ entry for a message Kafka will never take: its first OVERSIZED_KEEP_BYTES, with
    reason `kafka_rejected` and the refusal as detail."""
    rejection = Rejection(DlqReason.KAFKA_REJECTED, f"{out.topic}: {type(error).__name__}: {error}")
    source = out.source or out.topic
    headers = dlq_headers(out.headers, rejection, source)
    value = out.value[:OVERSIZED_KEEP_BYTES]
    return Outgoing(dlq_topic, out.key, value, headers, rejection, source)
