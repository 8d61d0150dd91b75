"""What the alarm service takes in from Kafka: the detection's alert events (alerts.events) and
the correlation stage's network incidents (incidents.events), each to its recorder. The alarm
transitions the service itself publishes on alerts.events are skipped by their header; a record
that does not decode is counted, logged once per reason and skipped, never fatal."""

from __future__ import annotations

import logging
from typing import TypeVar

from aiokafka import ConsumerRecord

from alerting.records.incidents import IncidentRecorder
from alerting.records.store import AlarmStore
from plantmesh.contracts import AlertEvent, DecodeError, IncidentUpdate, decode, is_transition
from plantmesh.resilience import ErrorLog
from plantmesh.topics import Topics

log = logging.getLogger(__name__)

M = TypeVar("M", AlertEvent, IncidentUpdate)


class Intake:
    def __init__(self, store: AlarmStore, topics: Topics) -> None:
        self.store = store
        self.incidents = IncidentRecorder(store)
        self.topics = topics
        self.recorded = 0
        self.incident_updates = 0
        self.bad_events = 0
        self._bad = ErrorLog(log, "reading alert events")

    async def take(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.topic == self.topics.incident_events:
            update = self._decoded(IncidentUpdate, record)
            if update is not None:
                await self.incidents.apply(update)
                self.incident_updates += 1
            return
        if is_transition(record.headers):
            return  # our own publications share the topic
        event = self._decoded(AlertEvent, record)
        if event is not None:
            await self.store.record(event)
            self.recorded += 1

    def _decoded(self, model: type[M], record: ConsumerRecord[bytes, bytes]) -> M | None:
        try:
            return decode(model, record.value or b"")
        except DecodeError as exc:
            self.bad_events += 1
            self._bad.once(
                str(exc.reason),
                "skipping an undecodable record on %s at offset %d: %s",
                record.topic,
                record.offset,
                exc,
            )
            return None
