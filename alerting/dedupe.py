"""Batches seen before: telemetry.normalized is at-least-once (a writer killed after producing
and before committing produces its batches again), and an agent's store-and-forward may send a
batch twice. A batch is identified by its gateway, session and sequence number; one seen before
is skipped whole, so a duplicate can never change a decision.

The seen sequence numbers of a session are kept as merged ranges: a live session is one range,
a buffer replayed after an outage adds one more until the gap fills. Only the newest
`SESSIONS_PER_GATEWAY` sessions of a gateway are kept (a session is one agent run)."""

from __future__ import annotations

import bisect
from collections import OrderedDict

SESSIONS_PER_GATEWAY = 4


class SeqRanges:
    """A set of non-negative integers as sorted, disjoint, non-adjacent [lo, hi] ranges."""

    __slots__ = ("_his", "_los")

    def __init__(self) -> None:
        self._los: list[int] = []
        self._his: list[int] = []

    def add(self, n: int) -> bool:
        """Add `n`; False if it was already in."""
        los, his = self._los, self._his
        if his and n == his[-1] + 1:  # the common case: the next one of a live session
            his[-1] = n
            self._merge(len(his) - 1)
            return True
        i = bisect.bisect_right(los, n) - 1  # the range starting at or before n
        if i >= 0 and n <= his[i]:
            return False
        if i >= 0 and n == his[i] + 1:
            his[i] = n
            self._merge(i)
        elif i + 1 < len(los) and n == los[i + 1] - 1:
            los[i + 1] = n
        else:
            los.insert(i + 1, n)
            his.insert(i + 1, n)
        return True

    def _merge(self, i: int) -> None:
        if i + 1 < len(self._los) and self._his[i] + 1 >= self._los[i + 1]:
            self._his[i] = self._his.pop(i + 1)
            del self._los[i + 1]

    @property
    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self._los, self._his, strict=True))


class SeenBatches:
    """Per gateway, the sequence numbers seen in each of its newest sessions."""

    def __init__(self) -> None:
        self._gateways: dict[str, OrderedDict[str, SeqRanges]] = {}
        self.duplicates = 0

    def first_time(self, gateway_id: str, session_id: str, seq: int) -> bool:
        """True the first time a (gateway, session, seq) is seen; counts the others."""
        sessions = self._gateways.setdefault(gateway_id, OrderedDict())
        ranges = sessions.get(session_id)
        if ranges is None:
            ranges = sessions[session_id] = SeqRanges()
            while len(sessions) > SESSIONS_PER_GATEWAY:
                sessions.popitem(last=False)
        if ranges.add(seq):
            return True
        self.duplicates += 1
        return False
