"""One log line per alert event, with the evidence summary."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from plantmesh.contracts import AlertEvent

log = logging.getLogger("alerting.events")


class LogSink:
    name = "log"

    async def start(self) -> None:
        pass

    async def publish(self, events: Sequence[AlertEvent]) -> None:
        for event in events:
            log.info(
                "alert %s %s %s/%s: %s",
                event.kind.value,
                event.rule,
                event.asset.key,
                event.signal,
                event.evidence.summary,
                extra={"alert_id": event.alert_id, "severity": event.severity.value},
            )

    async def close(self) -> None:
        pass
