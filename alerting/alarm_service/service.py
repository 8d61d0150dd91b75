"""The alarm service: the detection's events from `alerts.events` into the alarm database, then
the stages that follow from it, each a task of one TaskGroup:

- record: RAISED/CLEARED through the lifecycle (suppression, escalation, deliveries and outbox
  rows in the same transaction); Kafka offsets committed only after the database's commit;
- due times: escalation levels, re-alarms, ends of shelving, every `tick_s`;
- deliver: notifications, woken at once by a new transition;
- publish: the outbox to Kafka (AlarmTransition), InfluxDB and andon boards;
- the HTTP API (uvicorn), whose actions go through the same store.

Several processes can run side by side: Kafka splits the events between them, the database's
row locks and unique keys make every escalation, notification and publication happen once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

import uvicorn
from aiokafka import AIOKafkaConsumer
from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.alarm_service.config import AlarmServiceConfig
from alerting.alarm_service.intake import RETRYABLE, Intake
from alerting.alarm_service.publishers import (
    AndonPublisher,
    InfluxPublisher,
    KafkaPublisher,
    Publisher,
)
from alerting.api.app import make_app
from alerting.catalogue import load_catalogue
from alerting.lifecycle.policies import load_escalation
from alerting.notify.worker import DeliveryWorker
from alerting.records import maintenance, outbox
from alerting.records.database import async_url as database_url
from alerting.records.database import open_database, shown
from alerting.records.migrate import current, head, upgrade
from alerting.records.store import AlarmStore
from plantmesh.fleet import Fleet
from plantmesh.kafka.admin import ensure_topics
from plantmesh.kafka.clients import make_consumer, start_client
from plantmesh.resilience import Backoff, ErrorLog, StopRequestedError, retry_until_stopped
from plantmesh.topics import Topics

log = logging.getLogger(__name__)
T = TypeVar("T")


class SchemaBehindError(RuntimeError):
    """The database's schema is older than the code and `migrate: false` forbids upgrading."""


class _ApiServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.up = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the service handles SIGTERM/SIGINT itself and stops the server

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.up.set()


class AlarmService:
    def __init__(
        self, config: AlarmServiceConfig, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.config = config
        self.clock = clock
        self.topics = Topics(config.namespace)
        self.ready = asyncio.Event()
        self.api_port: int | None = None
        self.store: AlarmStore | None = None
        self.intake: Intake | None = None
        self._stop = asyncio.Event()
        self._wake = {name: asyncio.Event() for name in ("deliver", *config.sinks)}
        self._server: _ApiServer | None = None
        self._backoff = Backoff(config.backoff.initial_s, config.backoff.max_s)

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.should_exit = True

    @staticmethod
    async def _quietly(work: Awaitable[None]) -> None:
        """A stage's task: a stop requested while it retries ends it, not the TaskGroup."""
        with contextlib.suppress(StopRequestedError):
            await work

    def _woken(self) -> None:
        for event in self._wake.values():
            event.set()

    async def _retry(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        return await retry_until_stopped(
            operation,
            stop=self._stop,
            backoff=self._backoff,
            errors=ErrorLog(log, what),
            retry_on=RETRYABLE,
        )

    async def run(self) -> None:
        config = self.config
        url = config.database.url.get_secret_value()
        engine = open_database(url, config.database.pool_size)
        publishers: list[Publisher] = []
        worker: DeliveryWorker | None = None
        consumer: AIOKafkaConsumer | None = None
        try:
            with contextlib.suppress(StopRequestedError):
                await self._retry("opening the alarm database", lambda: self._schema(engine))
                escalation = load_escalation(config.escalation) if config.escalation else None
                store = self.store = AlarmStore(
                    engine,
                    config.lifecycle.policy(),
                    self.clock,
                    escalation=escalation,
                    sinks=config.sinks,
                )
                store.on_change = self._woken
                if escalation is not None:
                    worker = DeliveryWorker(
                        engine,
                        escalation,
                        load_catalogue(config.catalogue),
                        self.clock,
                        config.max_delivery_attempts,
                    )
                    worker.on_done = self._wake["deliver"].set
                publishers = self._publishers(engine)
                log.info(
                    "alarm service: %s -> %s (%s)",
                    self.topics.alert_events,
                    shown(database_url(url)),
                    ", ".join(config.sinks),
                )
                # The stages that live on the database start at once: a deadline due while
                # Kafka is slow to let us into the group (a killed member's session lingering
                # for its timeout) is still met.
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._quietly(self._due(store)), name="due")
                    if worker is not None:
                        tasks.create_task(self._quietly(self._deliver(worker)), name="deliver")
                    for publisher in publishers:
                        tasks.create_task(
                            self._quietly(self._publish(engine, publisher)), name=publisher.sink
                        )
                    if config.api.enabled:
                        tasks.create_task(self._quietly(self._serve(store)), name="api")
                    else:
                        self.ready.set()
                    consumer = await self._retry("connecting to Kafka", self._consumer)
                    intake = self.intake = Intake(store, self.topics)
                    tasks.create_task(self._quietly(self._record(consumer, intake)), name="record")
        finally:
            if consumer is not None:
                await consumer.stop()
            if worker is not None:
                await worker.close()
            for publisher in publishers:
                with contextlib.suppress(Exception):
                    await publisher.close()
            await engine.dispose()

    async def _schema(self, engine: AsyncEngine) -> None:
        if self.config.migrate:
            await upgrade(engine)
            return
        found = await current(engine)
        if found != head():
            raise SchemaBehindError(
                f"the alarm database is at {found or 'no revision'}, the code needs {head()}: "
                "run `plantmesh alerting db upgrade` (or set migrate: true)"
            )

    def _publishers(self, engine: AsyncEngine) -> list[Publisher]:
        config = self.config
        made: list[Publisher] = [KafkaPublisher(config.kafka, self.topics.alert_events)]
        if config.influxdb is not None:
            made.append(InfluxPublisher(config.influxdb))
        if config.andon is not None:
            made.append(AndonPublisher(config.andon, engine))
        return made

    def _inputs(self) -> list[str]:
        topics = [self.topics.alert_events]
        return topics + ([self.topics.incident_events] if self.config.incidents else [])

    async def _consumer(self) -> AIOKafkaConsumer:
        config = self.config
        if config.kafka_topics.create:
            await ensure_topics(
                config.kafka,
                self._inputs(),
                config.kafka_topics.partitions,
                config.kafka_topics.replication_factor,
            )
        consumer = make_consumer(
            config.kafka,
            "alarms",
            *self._inputs(),
            group_id=config.group_id,
            auto_offset_reset=config.start_from,
        )
        await start_client(consumer)
        return consumer

    async def _nap(self, wake: asyncio.Event | None, seconds: float) -> None:
        """Until woken, stopped, or `seconds` passed."""
        waiters = [asyncio.ensure_future(self._stop.wait())]
        if wake is not None:
            waiters.append(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if wake is not None:
            wake.clear()

    async def _record(self, consumer: AIOKafkaConsumer, intake: Intake) -> None:
        while not self._stop.is_set():
            batches = await self._retry(
                "reading alert events", lambda: consumer.getmany(timeout_ms=200, max_records=500)
            )
            for records in batches.values():
                for record in records:
                    await self._retry("recording an alert event", partial(intake.take, record))
            if batches:
                await self._retry("committing offsets", consumer.commit)

    async def _due(self, store: AlarmStore) -> None:
        while not self._stop.is_set():
            await self._retry("firing due times", store.fire_due)
            await self._retry("ending maintenance windows", partial(maintenance.end_due, store))
            await self._nap(None, self.config.tick_s)

    async def _deliver(self, worker: DeliveryWorker) -> None:
        while not self._stop.is_set():
            await self._retry("sending notifications", worker.dispatch)
            # Until a record makes a delivery, or a send ends while some were held back.
            await self._nap(self._wake["deliver"], self.config.tick_s)

    async def _publish(self, engine: AsyncEngine, publisher: Publisher) -> None:
        await self._retry(f"starting the {publisher.sink} sink", publisher.start)
        errors = ErrorLog(log, f"publishing to {publisher.sink}")
        while not self._stop.is_set():
            rows = await self._retry(
                "reading the outbox",
                lambda: outbox.claim(engine, publisher.sink, self.clock(), 200),
            )
            if not rows:
                await self._nap(self._wake[publisher.sink], self.config.tick_s)
                continue
            try:
                await publisher.publish([r.transition for r in rows])
            except Exception as exc:  # the sink's own failure: the rows wait and come back
                errors.failed(exc)
                again = partial(outbox.retry, engine, rows, self.clock())
                await self._retry("rescheduling the outbox", again)
                await self._nap(None, self.config.tick_s)
                continue
            errors.succeeded()
            await self._retry("clearing the outbox", partial(outbox.done, engine, rows))

    async def _serve(self, store: AlarmStore) -> None:
        api = self.config.api
        app = make_app(store, self.config.influxdb)
        app.state.scorecards = self.config.scorecards
        registry = self.config.registry
        app.state.fleet = Fleet.load(registry) if registry is not None else None
        config = uvicorn.Config(
            app,
            host=api.host,
            port=api.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=5,  # the console's live streams never end by themselves
        )
        server = self._server = _ApiServer(config)
        serving = asyncio.create_task(server.serve(), name="uvicorn")
        up = asyncio.ensure_future(server.up.wait())
        await asyncio.wait([up, serving], return_when=asyncio.FIRST_COMPLETED)
        up.cancel()
        if server.started:
            self.api_port = server.servers[0].sockets[0].getsockname()[1]
            log.info(
                "alarm API on http://%s:%d (OpenAPI at /openapi.json)", api.host, self.api_port
            )
        self.ready.set()
        if self._stop.is_set():
            server.should_exit = True
        await serving
