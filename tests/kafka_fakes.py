"""A stand-in for aiokafka's BatchBuilder, for tests whose producer acknowledges on command."""

from __future__ import annotations


class FakeBatch:
    """Takes up to `capacity` messages (the first one always), keeping their values."""

    def __init__(self, capacity: int = 1_000_000) -> None:
        self.capacity = capacity
        self.values: list[bytes] = []
        self.closed = False

    def append(
        self,
        *,
        timestamp: int | None,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]],
    ) -> bool | None:
        if self.closed or (self.values and len(self.values) >= self.capacity):
            return None
        self.values.append(value)
        return True

    def close(self) -> None:
        self.closed = True
