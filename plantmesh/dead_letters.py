"""Labelling what goes to `telemetry.dlq`, the same way in every service.

Every rejected message keeps its original bytes (or, when Kafka cannot take them, the first
OVERSIZED_KEEP_BYTES); the headers say why (`dlq_reason`, a DlqReason), what exactly
(`dlq_detail`) and where it came from (`dlq_source`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from plantmesh.topics import HEADER_DLQ_DETAIL, HEADER_DLQ_REASON, HEADER_DLQ_SOURCE, DlqReason

Headers = list[tuple[str, bytes]]

MAX_DETAIL_CHARS = 1000
OVERSIZED_KEEP_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: DlqReason
    detail: str


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 3] + "..."


def kafka_source(topic: str, partition: int, offset: int) -> str:
    return f"{topic}/{partition}/{offset}"


def dlq_headers(
    original: Iterable[tuple[str, bytes]], rejection: Rejection, source: str
) -> Headers:
    """The original headers (minus any earlier DLQ labels) plus reason, detail and source."""
    ours = {HEADER_DLQ_REASON, HEADER_DLQ_DETAIL, HEADER_DLQ_SOURCE}
    headers = [(k, v) for k, v in original if k not in ours]
    headers += [
        (HEADER_DLQ_REASON, rejection.reason.encode()),
        (HEADER_DLQ_DETAIL, _truncate(rejection.detail).encode()),
        (HEADER_DLQ_SOURCE, source.encode()),
    ]
    return headers


def header(headers: Sequence[tuple[str, bytes]], name: str) -> bytes | None:
    """The last value of a header, or None."""
    for key, value in reversed(headers):
        if key == name:
            return value
    return None


class RejectionLog:
    """Logs the first rejection of each reason, with its detail; later ones are only counted, so
    a gateway that keeps sending garbage cannot flood the log."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self.counts: Counter[DlqReason] = Counter()

    def rejected(self, rejection: Rejection, source: str) -> None:
        self.counts[rejection.reason] += 1
        if self.counts[rejection.reason] == 1:
            self._log.warning(
                "bad input sent to the DLQ (%s) from %s: %s; further ones are only counted",
                rejection.reason,
                source,
                _truncate(rejection.detail),
            )
