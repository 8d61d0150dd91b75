"""Alerting as a pipeline of stages (Alertmanager's notify pipeline): the engine decides, then
each stage passes on, holds back or rewrites the events: today only fan-out to the sinks; later
suppress (shelving), dedup, escalate and notify slot in before it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from alerting.sinks import EventSink, SinkError
from plantmesh.contracts import AlertEvent
from plantmesh.resilience import Backoff, ErrorLog, StopRequestedError

log = logging.getLogger(__name__)


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
    backoff until it succeeds or the service stops. Returns only when every sink has the events;
    raises StopRequestedError (nothing may be committed) when the service stopped first."""

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
        self._errors = [ErrorLog(log, f"sink {sink.name}") for sink in self.sinks]

    async def process(self, events: Sequence[AlertEvent]) -> Sequence[AlertEvent]:
        for sink, errors in zip(self.sinks, self._errors, strict=True):
            backoff = self._backoff()
            # Unlike retry_until_stopped, the first attempt is made even when stopping: events
            # in hand that reach every sink can still be committed.
            while True:
                try:
                    await sink.publish(events)
                except SinkError as exc:
                    errors.failed(exc)
                    if await backoff.wait(self._stopping):
                        raise StopRequestedError(errors.what) from exc
                    continue
                errors.succeeded()
                break
        return events
