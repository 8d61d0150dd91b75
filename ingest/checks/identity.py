"""Where a raw batch came in, as the bridge recorded it, and whether its payload agrees.

The bridge sends along the MQTT topic of each message and, with a gateway registry, the
gateways the broker's ACL lets publish there (plantmesh.identities). A batch whose readings
name another plant than its topic, or whose gateway is not one of those allowed, is refused
whole (`identity_mismatch`): it claims an identity it did not come in with. Messages written
to Kafka directly (no MQTT topic header) come from an authenticated Kafka principal instead,
and are not checked here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from plantmesh.dead_letters import Rejection
from plantmesh.identities import decode_publishers, plant_of_topic
from plantmesh.topics import HEADER_MQTT_PUBLISHERS, HEADER_MQTT_TOPIC, DlqReason, Topics

CACHE_SIZE = 100_000


@dataclass(frozen=True)
class Origin:
    topic: str
    plant: str | None
    """The plant the topic names (None: a topic that is not one of ours, not checked)."""
    publishers: frozenset[str] | None
    """The gateways allowed on the topic; None when the bridge had no registry."""

    def gateway_rejection(self, gateway_id: str) -> Rejection | None:
        if self.publishers is None or gateway_id in self.publishers:
            return None
        allowed = ", ".join(sorted(self.publishers)) or "none"
        return Rejection(
            DlqReason.IDENTITY_MISMATCH,
            f"gateway_id {gateway_id!r} did not publish on {self.topic}: "
            f"the gateways allowed there are {allowed}",
        )

    def plant_rejection(self, plants: Iterable[str]) -> Rejection | None:
        expected = self.plant
        if expected is None:
            return None
        for plant in plants:
            if plant != expected:
                return Rejection(
                    DlqReason.IDENTITY_MISMATCH,
                    f"a reading of plant {plant!r} came in on {self.topic}, "
                    f"a topic of plant {expected!r}",
                )
        return None


class Origins:
    """Origin of each record from its headers, cached by the header values (a few thousand
    topics repeat for millions of messages)."""

    def __init__(self, topics: Topics) -> None:
        self.topics = topics
        self._cache: dict[tuple[bytes, bytes | None], Origin] = {}

    def of(self, headers: Sequence[tuple[str, bytes]] | None) -> Origin | None:
        if not headers:
            return None
        topic = publishers = None
        for name, value in headers:
            if name == HEADER_MQTT_TOPIC:
                topic = value
            elif name == HEADER_MQTT_PUBLISHERS:
                publishers = value
        if topic is None:
            return None
        key = (topic, publishers)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            text = topic.decode(errors="replace")
            found = self._cache[key] = Origin(
                text,
                plant_of_topic(self.topics, text),
                None if publishers is None else decode_publishers(publishers),
            )
        return found
