"""Capped, jittered exponential backoff for reconnect loops."""

from __future__ import annotations

import random


class Backoff:
    """`next()` gives the delay before the next attempt: doubling from `initial` up to `cap`,
    with full jitter so many gateways that lost the same server do not return in lockstep."""

    def __init__(self, initial: float = 0.5, cap: float = 30.0, jitter: float = 0.5) -> None:
        self.initial = initial
        self.cap = cap
        self.jitter = jitter
        self._attempt = 0

    def next(self) -> float:
        base = min(self.cap, self.initial * (1 << self._attempt))
        self._attempt = min(self._attempt + 1, 32)
        return base * (1 - self.jitter * random.random())

    def reset(self) -> None:
        self._attempt = 0
