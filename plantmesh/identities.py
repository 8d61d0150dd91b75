"""Who may publish on an MQTT topic: the gateway registry the broker's ACL is made from
(`plantmesh gateway add`, `<state>/mosquitto/security/gateways.json`), read by the bridge.

MQTT tells a subscriber nothing about who published a message. What makes the topic an
identity is the broker's ACL: a gateway may publish readings only under its own plant and its
status only on its own status topic. So the publishers of a message are the gateways the
registry allows on its topic; the bridge sends their names along (header `mqtt_publishers`)
and the writer refuses a batch whose payload names another gateway or plant.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from plantmesh.topics import GATEWAY_LEVEL, READINGS_LEAF, STATUS_LEAF, Topics

RELOAD_EVERY_S = 1.0


@dataclass(frozen=True)
class Grant:
    """One gateway's MQTT identity: it publishes readings under `plant` in `namespace`."""

    gateway: str
    plant: str
    namespace: str = ""


class IdentityError(ValueError):
    """A registry that cannot be read: the bridge refuses to start rather than guess."""


def load_grants(path: Path) -> list[Grant]:
    try:
        raw = json.loads(path.read_text())
        return [
            Grant(str(g["name"]), str(g["plant"]), str(g.get("namespace", "")))
            for g in raw.get("gateways", [])
        ]
    except FileNotFoundError:
        return []  # no gateway registered yet: nobody but the operator may publish
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IdentityError(f"cannot read the gateway registry {path}: {exc}") from None


class Publishers:
    """The gateways allowed on each topic of one namespace, from a registry file that is read
    again when it changes (a gateway added while the bridge runs is known within a second)."""

    def __init__(self, path: Path, topics: Topics) -> None:
        self.path = path
        self.topics = topics
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._by_plant: dict[str, frozenset[str]] = {}
        self._gateways: dict[str, str] = {}  # gateway -> its plant
        self.generation = 0
        """Changes whenever the registry did: callers' caches keyed by topic start over."""
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < RELOAD_EVERY_S:
            return
        self._checked = now
        try:
            info = os.stat(self.path)
            stamp: tuple[int, int] | None = (info.st_mtime_ns, info.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp and not force:
            return
        grants = [g for g in load_grants(self.path) if g.namespace == self.topics.namespace]
        by_plant: dict[str, set[str]] = {}
        for grant in grants:
            by_plant.setdefault(grant.plant, set()).add(grant.gateway)
        self._by_plant = {plant: frozenset(names) for plant, names in by_plant.items()}
        self._gateways = {g.gateway: g.plant for g in grants}
        self._stamp = stamp
        self.generation += 1

    def of_topic(self, mqtt_topic: str) -> frozenset[str]:
        """The gateways the ACL lets publish on `mqtt_topic` (empty: none of them)."""
        prefix = self.topics.mqtt_root + "/"
        if not mqtt_topic.startswith(prefix):
            return frozenset()
        parts = mqtt_topic[len(prefix) :].split("/")
        if len(parts) == 5 and parts[4] == READINGS_LEAF:
            return self._by_plant.get(parts[0], frozenset())
        if len(parts) == 4 and parts[1] == GATEWAY_LEVEL and parts[3] == STATUS_LEAF:
            gateway = parts[2]
            return frozenset({gateway}) if self._gateways.get(gateway) == parts[0] else frozenset()
        return frozenset()


def encode_publishers(names: frozenset[str]) -> bytes:
    return ",".join(sorted(names)).encode()


def decode_publishers(value: bytes) -> frozenset[str]:
    text = value.decode(errors="replace")
    return frozenset(text.split(",")) if text else frozenset()


def plant_of_topic(topics: Topics, mqtt_topic: str) -> str | None:
    """The plant an MQTT readings or status topic names, or None when it is not one of ours."""
    prefix = topics.mqtt_root + "/"
    if not mqtt_topic.startswith(prefix):
        return None
    parts = mqtt_topic[len(prefix) :].split("/")
    if (len(parts) == 5 and parts[4] == READINGS_LEAF) or (
        len(parts) == 4 and parts[1] == GATEWAY_LEVEL and parts[3] == STATUS_LEAF
    ):
        return parts[0]
    return None
