"""What the alarm service takes in from Kafka: the detection's alert events (alerts.events) and
the correlation stage's network incidents (incidents.events), each to its recorder. The alarm
transitions the service itself publishes on alerts.events are skipped by their header.

No poison pill (alerting/poison.py): a record that does not decode, that the database cannot
hold, or whose recording raises anything but a passing failure (the database or Kafka away, a
lock) is skipped, counted by reason in `skipped` and logged once per kind. Passing failures
propagate: the service retries the same record until it is recorded, so none is lost to an
outage."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError, DisconnectionError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from alerting.poison import Skips, event_problem, internal_error, update_problem
from alerting.records.incidents import IncidentRecorder
from alerting.records.store import AlarmStore
from plantmesh.contracts import AlertEvent, DecodeError, IncidentUpdate, decode, is_transition
from plantmesh.dead_letters import Rejection
from plantmesh.topics import Topics

log = logging.getLogger(__name__)

M = TypeVar("M", AlertEvent, IncidentUpdate)
RETRYABLE = (KafkaError, SQLAlchemyError, OSError)
PASSING = (KafkaError, OSError, DisconnectionError, PoolTimeoutError)
MESSAGE_SQLSTATES = ("22", "54")
"""SQLSTATE classes that are the message's own doing: data exception (a value too long, out of
range, not valid JSON), program limit exceeded. Retrying the same message cannot help."""


def passing(exc: BaseException) -> bool:
    """Whether recording the same message again may succeed: a server or connection away, a
    lock, a race with another process (any driver error but the message's own data); not a
    value SQLAlchemy cannot bind, nor a bug."""
    if isinstance(exc, DBAPIError):
        state = getattr(exc.orig, "sqlstate", None)
        return not (isinstance(state, str) and state.startswith(MESSAGE_SQLSTATES))
    return isinstance(exc, PASSING)


class Intake:
    def __init__(self, store: AlarmStore, topics: Topics) -> None:
        self.store = store
        self.incidents = IncidentRecorder(store)
        self.topics = topics
        self.recorded = 0
        self.incident_updates = 0
        self.bad_events = 0
        """Records that did not decode (also in `skipped`, by reason)."""
        self.skipped: Counter[str] = Counter()
        """Every record skipped, by reason (alerting/poison.py)."""
        self._skips = Skips(log, self.skipped, "record")

    async def take(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Raises only what `passing` accepts: the caller retries the record."""
        if record.topic == self.topics.incident_events:
            update = self._decoded(IncidentUpdate, record)
            if update is None or not self._usable(record, update_problem(update)):
                return
            if await self._guarded(record, partial(self.incidents.apply, update)):
                self.incident_updates += 1
            return
        if is_transition(record.headers):
            return  # our own publications share the topic
        event = self._decoded(AlertEvent, record)
        if event is None or not self._usable(record, event_problem(event)):
            return
        if await self._guarded(record, partial(self.store.record, event)):
            self.recorded += 1

    def _decoded(self, model: type[M], record: ConsumerRecord[bytes, bytes]) -> M | None:
        try:
            return decode(model, record.value or b"")
        except DecodeError as exc:
            self.bad_events += 1
            self._skips.skip(record, Rejection(exc.reason, "; ".join(exc.details[:3])))
            return None

    def _usable(self, record: ConsumerRecord[bytes, bytes], problem: Rejection | None) -> bool:
        if problem is not None:
            self._skips.skip(record, problem)
        return problem is None

    async def _guarded(
        self, record: ConsumerRecord[bytes, bytes], work: Callable[[], Awaitable[object]]
    ) -> bool:
        """Whether `work` succeeded; False once the record was skipped."""
        try:
            await work()
        except Exception as exc:
            if passing(exc):
                raise
            # The record's own transaction rolled back; an incident's alarm may have been
            # recorded before its picture failed (the next update of the incident finds it).
            self._skips.skip(record, internal_error(exc), exc)
            return False
        return True
