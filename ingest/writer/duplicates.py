"""Telling an exact duplicate batch from a conflicting one.

At-least-once delivery hands the writer the same batch again (a bridge or writer restart, a
gateway resend): the same lines rewrite the same points, which changes nothing. A batch with the
same gateway, session and seq but other content is no such replay: writing it would overwrite
stored values without a trace. So the writer remembers a digest of the lines each recent batch
wrote, by (gateway, session, seq), and refuses a batch whose digest differs.

The window is the last `size` batches, in memory. A writer that takes a partition (at start,
after a crash, in a rebalance) first recalls that partition's committed tail from telemetry.raw
into it (ingest.writer.recall), so a restart or a change of owner forgets nothing recent. Not
detected: a conflicting replay of a batch older than the window, or one sent on another machine's
topic (another partition, maybe another writer). Lines, not raw bytes, are compared: they are
exactly what would be stored, whatever the JSON spelling or `sent_at` of a resend.
"""

from __future__ import annotations

import hashlib
from enum import Enum


class Seen(Enum):
    NEW = "new"
    SAME = "same"
    """An exact duplicate: write it again (idempotent)."""
    CONFLICT = "conflict"
    """Same (gateway, session, seq), other content: refuse it."""


def lines_digest(lines: list[str]) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for line in lines:
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.digest()


class BatchDigests:
    """The digests of the last `size` batches, oldest forgotten first (dicts keep insertion
    order); `size` 0 remembers nothing and calls everything NEW."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._digests: dict[tuple[str, str, int], bytes] = {}

    def __len__(self) -> int:
        return len(self._digests)

    def see(self, gateway_id: str, session_id: str, seq: int, lines: list[str]) -> Seen:
        if not self.size:
            return Seen.NEW
        key = (gateway_id, session_id, seq)
        digest = lines_digest(lines)
        known = self._digests.get(key)
        if known is not None:
            return Seen.SAME if known == digest else Seen.CONFLICT
        digests = self._digests
        if len(digests) >= self.size:
            del digests[next(iter(digests))]
        digests[key] = digest
        return Seen.NEW
