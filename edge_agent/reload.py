"""Hot reload: what changed between two configs, and noticing that the file changed.

Only what changed restarts: a source whose section is unchanged keeps streaming, and the
publisher (with its MQTT connection) is replaced only when one of its own keys changed. The
buffer and the metrics endpoint are opened once per process: changes there are reported as
needing a restart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.config import AgentConfig, SourceConfig

PUBLISHER_KEYS = (
    "gateway_id",
    "plant",
    "namespace",
    "mqtt",
    "publish_interval_s",
    "queue_size",
    "max_readings_per_batch",
    "shutdown_timeout_s",
)
RESTART_KEYS = ("buffer", "metrics", "workers")
"""Keys read once at start; a reload says they need a restart and keeps the running values."""


@dataclass
class ConfigChange:
    start: list[SourceConfig] = field(default_factory=list)
    """Sources that are new, or changed (then they are stopped first)."""
    stop: list[str] = field(default_factory=list)
    """Names of sources removed or changed."""
    publisher: bool = False
    needs_restart: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.start or self.stop or self.publisher or self.needs_restart)

    def describe(self) -> str:
        started = {s.name for s in self.start}
        restarted = sorted(started & set(self.stop))
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (
                ("restarting", restarted),
                ("starting", sorted(started - set(restarted))),
                ("stopping", sorted(set(self.stop) - set(restarted))),
            )
            if names
        ]
        if self.publisher:
            parts.append("restarting the publisher")
        return "; ".join(parts) or "nothing to restart"


def diff(old: AgentConfig, new: AgentConfig) -> ConfigChange:
    change = ConfigChange()
    change.publisher = any(getattr(old, key) != getattr(new, key) for key in PUBLISHER_KEYS)
    change.needs_restart = [key for key in RESTART_KEYS if getattr(old, key) != getattr(new, key)]
    before = {source.name: source for source in old.sources}
    after = {source.name: source for source in new.sources}
    everything = old.plant != new.plant  # the plant is part of every reading's asset path
    for name, source in before.items():
        if everything or after.get(name) != source:
            change.stop.append(name)
    for name, source in after.items():
        if everything or before.get(name) != source:
            change.start.append(source)
    return change


class FileWatch:
    """Tells whether a file's content changed since the last call (a save that rewrites the
    same bytes, or a touch, is no change)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._digest = self._read()

    def changed(self) -> bool:
        digest = self._read()
        if digest is None or digest == self._digest:
            return False  # a file that is briefly missing (being replaced) is no change
        self._digest = digest
        return True

    def _read(self) -> str | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None
