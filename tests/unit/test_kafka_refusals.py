"""The one decision every producer takes when Kafka refuses a message."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError

from plantmesh.dead_letters import OVERSIZED_KEEP_BYTES, Rejection, header
from plantmesh.kafka.refusals import Outgoing, Refusal, dead_letter, decide
from plantmesh.topics import HEADER_DLQ_REASON, HEADER_DLQ_SOURCE, DlqReason

TOO_LARGE = MessageSizeTooLargeError("too large")


@pytest.mark.parametrize(
    ("error", "alone", "is_dlq", "expected"),
    [
        (KafkaTimeoutError(), False, False, Refusal.RETRY),
        (KafkaConnectionError(), True, True, Refusal.RETRY),
        (RuntimeError("anything else"), True, False, Refusal.RETRY),
        (TOO_LARGE, False, False, Refusal.ISOLATE),
        (TOO_LARGE, False, True, Refusal.ISOLATE),
        (TOO_LARGE, True, False, Refusal.DEAD_LETTER),
        (TOO_LARGE, True, True, Refusal.DROP),
    ],
)
def test_decision(error: BaseException, alone: bool, is_dlq: bool, expected: Refusal) -> None:
    assert decide(error, alone=alone, dead_letter=is_dlq) is expected


def test_a_dead_letter_keeps_the_start_of_the_message_and_says_why() -> None:
    out = Outgoing(
        "ns.telemetry.normalized",
        b"p/m",
        b"x" * (OVERSIZED_KEEP_BYTES + 10),
        [("mqtt_topic", b"t")],
        source="ns.telemetry.raw/0/7",
    )
    entry = dead_letter(out, TOO_LARGE, "ns.telemetry.dlq")
    assert entry.topic == "ns.telemetry.dlq"
    assert entry.key == b"p/m"
    assert len(entry.value) == OVERSIZED_KEEP_BYTES
    assert entry.is_dead_letter
    assert not out.is_dead_letter
    assert entry.rejection is not None
    assert entry.rejection.reason is DlqReason.KAFKA_REJECTED
    assert "ns.telemetry.normalized" in entry.rejection.detail
    assert header(entry.headers, HEADER_DLQ_REASON) == b"kafka_rejected"
    assert header(entry.headers, HEADER_DLQ_SOURCE) == b"ns.telemetry.raw/0/7"
    assert header(entry.headers, "mqtt_topic") == b"t"
    # A DLQ entry that is refused on its own is dropped, not dead-lettered again.
    assert decide(TOO_LARGE, alone=True, dead_letter=entry.is_dead_letter) is Refusal.DROP


def test_without_a_source_the_topic_is_named() -> None:
    entry = dead_letter(Outgoing("t", None, b"v", []), TOO_LARGE, "dlq")
    assert header(entry.headers, HEADER_DLQ_SOURCE) == b"t"
    assert entry.rejection == Rejection(DlqReason.KAFKA_REJECTED, entry.rejection.detail)
