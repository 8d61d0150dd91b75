"""Alerting as a pipeline of stages (Alertmanager's notify pipeline): the engine decides, then
each stage passes on, holds back or rewrites the events: today only fan-out to the sinks; later
suppress (shelving), dedup, escalate and notify slot in before it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from alerting.resilience import Backoff, LogOnce
from alerting.sinks import EventSink, SinkError
from plantmesh.contracts import AlertEvent

log = logging.getLogger(__name__)


class ShutdownRequestedError(Exception):
    """A stage gave up retrying because the service is stopping; nothing may be committed."""


class Stage(Protocol):
    @property
    def name(self) -> str: ...

    async def process(self, events: Sequence[AlertEvent]) -> Sequence[AlertEvent]:
        """Handle the events; return those that go on to the next stage."""
        ...


class Pipeline:
    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)

    async def process(self, events: Sequence[AlertEvent]) -> None:
        for stage in self.stages:
            if not events:
                return
            events = await stage.process(events)


class FanOut:
    """Publishes to every sink, retrying each one (not the ones that already succeeded) with
    backoff until it succeeds or the service stops. Returns only when every sink has the events."""

    name = "fan_out"

    def __init__(
        self,
        sinks: Sequence[EventSink],
        stopping: asyncio.Event,
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        self.sinks = list(sinks)
        self._stopping = stopping
        self._backoff = backoff
        self._log = LogOnce(log)

    async def process(self, events: Sequence[AlertEvent]) -> Sequence[AlertEvent]:
        for sink in self.sinks:
            backoff = self._backoff()
            while True:
                try:
                    await sink.publish(events)
                except SinkError as exc:
                    self._log.warning(
                        f"{sink.name}:{exc}", "sink %s failed, retrying: %s", sink.name, exc
                    )
                    if await backoff.wait(self._stopping):
                        raise ShutdownRequestedError from exc
                    continue
                self._log.recovered(f"{sink.name}:", "sink %s works again", sink.name)
                break
        return events
