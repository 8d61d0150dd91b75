"""The MQTT -> Kafka bridge: at-least-once, never acknowledging MQTT before Kafka has.

Messages come from a persistent MQTT session driven on the asyncio loop (paho_on_asyncio) and go
to Kafka a record batch per partition (plantmesh.kafka.batches); once Kafka acknowledged a batch,
each of its messages is acked on the MQTT connection that delivered it. Payloads pass through
byte for byte: parsing is the writer's job. Several bridges share the load through
`$share/<group>/...` subscriptions.

Memory stays bounded when Kafka stalls: at most `bridge.max_in_flight` messages unacked (MQTT 5
Receive Maximum); from a broker ignoring it the bridge stops reading (TCP flow control).

A batch Kafka refuses is handled as every producer handles one (plantmesh.kafka.refusals): sent
again later, its messages sent one by one, a message too large for Kafka sent to the DLQ, and a
DLQ entry too large even for that dropped, counted and acked, so MQTT does not resend it forever.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ingest.bridge.paho_on_asyncio import PahoSession
from ingest.bridge.routing import Router, mqtt_source
from ingest.bridge.stats import BridgeStats
from ingest.config import IngestConfig
from plantmesh.dead_letters import RejectionLog
from plantmesh.kafka.admin import ensure_topics
from plantmesh.kafka.batches import PartitionBatches
from plantmesh.kafka.clients import (
    KeyPartitions,
    Producer,
    ProducerFactory,
    make_producer,
    start_client,
)
from plantmesh.kafka.refusals import Outgoing, Refusal, dead_letter, decide
from plantmesh.resilience import Backoff, ErrorLog, StopRequestedError, retry_until_stopped

if TYPE_CHECKING:
    from plantmesh.metrics import MetricsServer

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Inbound:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: str
    connection: int
    """Which MQTT connection delivered it: an ack only means something on that connection."""
    out: Outgoing | None = None
    """What goes to Kafka, once worked out; replaced by a DLQ entry when Kafka refused it."""


class Bridge:
    """`await Bridge(config).run()` until `stop()`; `ready` is set once the MQTT subscriptions
    are granted. One run per instance."""

    def __init__(self, config: IngestConfig, *, producer_factory: ProducerFactory | None = None):
        self.config = config
        self.topics = config.topics
        self.stats = BridgeStats()
        self.metrics_server: MetricsServer | None = None
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._producer_factory = producer_factory or (lambda: make_producer(config.kafka, "bridge"))
        self._partitions: KeyPartitions | None = None
        self._batches: PartitionBatches[_Inbound] | None = None
        self._mqtt: PahoSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: asyncio.Queue[_Inbound | None] = asyncio.Queue()
        self._retry_timers: set[asyncio.TimerHandle] = set()
        self._max_in_flight = config.bridge.max_in_flight
        self._backoff = Backoff(config.backoff.initial_s, config.backoff.max_s)
        self._kafka_errors = ErrorLog(log, "Kafka send")
        self._drops = ErrorLog(log, "DLQ send")
        self._rejections = RejectionLog(log)
        self._router = Router(self.topics, config.bridge, self._rejections)
        self._started = False

    def stop(self) -> None:
        """Ask `run()` to finish: stop taking MQTT messages, drain, disconnect."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def connected(self) -> bool:
        """Connected to the MQTT broker (CONNACK received, socket open)."""
        return self._mqtt is not None and self._mqtt.connected

    # --- lifecycle ------------------------------------------------------------------------
    async def run(self) -> None:
        if self._started:
            raise RuntimeError("a Bridge runs once; create a new one")
        self._started = True
        self._loop = asyncio.get_running_loop()
        try:
            producer = await self._start_kafka()
        except StopRequestedError:
            return
        mqtt = self._mqtt = self._open_session()
        self._start_metrics()
        log.info(
            "bridge starting",
            extra={
                "mqtt": self.config.mqtt.url,
                "client_id": self.config.bridge_client_id,
                "kafka": self.config.kafka.bootstrap,
                "raw": self.topics.telemetry_raw,
            },
        )
        try:
            async with asyncio.TaskGroup() as tasks:
                forward = tasks.create_task(self._forward_loop(), name="ingest-bridge-forward")
                connection = tasks.create_task(mqtt.run(), name="ingest-bridge-mqtt")
                tasks.create_task(
                    self._shutdown_on_stop(forward, connection), name="ingest-bridge-shutdown"
                )
        finally:
            mqtt.stop_taking()
            if self._batches is not None:
                await self._batches.close()  # unacked: the broker redelivers them
            for timer in self._retry_timers:
                timer.cancel()
            self._retry_timers.clear()
            mqtt.disconnect()
            await producer.stop()
            if self.metrics_server is not None:
                self.metrics_server.close()
            log.info("bridge stopped", extra={"forwarded": self.stats.forwarded})

    async def _start_kafka(self) -> Producer:
        """Sinks before sources: topics and producer are ready before MQTT is subscribed."""
        backoff = Backoff(self.config.backoff.initial_s, self.config.backoff.max_s)
        if self.config.kafka_topics.create:
            names = [
                self.topics.telemetry_raw,
                self.topics.gateway_status,
                self.topics.telemetry_dlq,
            ]
            topics = self.config.kafka_topics
            await retry_until_stopped(
                lambda: ensure_topics(
                    self.config.kafka, names, topics.partitions, topics.replication_factor
                ),
                stop=self._stop,
                backoff=backoff,
                errors=ErrorLog(log, "Kafka topic setup"),
            )

        async def start() -> Producer:
            producer = self._producer_factory()
            await start_client(producer)
            return producer

        producer = await retry_until_stopped(
            start, stop=self._stop, backoff=backoff, errors=ErrorLog(log, "Kafka producer start")
        )
        self._partitions = KeyPartitions(producer)
        self._batches = PartitionBatches(producer, self._batch_done)
        return producer

    def _open_session(self) -> PahoSession:
        settings = self.config.bridge
        filters = (self.topics.mqtt_readings_filter, self.topics.mqtt_status_filter)
        return PahoSession(
            self.config.mqtt,
            client_id=self.config.bridge_client_id,
            filters=[f"$share/{settings.shared_group}/{f}" for f in filters],
            receive_maximum=settings.max_in_flight,
            session_expiry_s=settings.session_expiry_s,
            backoff=self.config.backoff,
            on_message=self._accept,
            on_connected=self._connected,
            on_subscribed=self._subscribed,
        )

    def _start_metrics(self) -> None:
        address = self.config.bridge.metrics.address
        if address is None:
            return
        try:
            from ingest.bridge.metrics import families
            from plantmesh.metrics import MetricsServer
        except ImportError as exc:  # prometheus-client is needed only for the endpoint
            log.error("metrics endpoint not started: %s", exc)
            return
        stats = self.stats
        try:
            self.metrics_server = MetricsServer(
                lambda: families(stats), address, asyncio.get_running_loop()
            )
        except OSError as exc:  # e.g. the port is taken: forwarding matters more than metrics
            log.error("metrics endpoint %s:%d not started: %s", *address, exc)

    async def _shutdown_on_stop(
        self, forward: asyncio.Task[None], connection: asyncio.Task[None]
    ) -> None:
        await self._stop.wait()
        assert self._mqtt is not None
        drain = self.config.bridge.drain_timeout_s
        if self.config.bridge.leave_group_on_stop:  # the others get everything from now on
            await self._mqtt.leave(drain, busy=lambda: self.stats.in_flight > 0)
        self._mqtt.stop_taking()  # take no more messages; the broker keeps the rest
        self._inbox.put_nowait(None)
        done, _ = await asyncio.wait({forward}, timeout=drain)
        if not done:
            log.warning(
                "Kafka did not acknowledge everything in time; the broker will redeliver the rest",
                extra={"in_flight": self.stats.in_flight},
            )
            forward.cancel()
        connection.cancel()  # the acks are written; `run` disconnects

    def _connected(self) -> None:
        self.stats.connects += 1

    def _subscribed(self) -> None:
        self.stats.subscribed += 1
        self.ready.set()

    # --- MQTT to Kafka --------------------------------------------------------------------
    async def _forward_loop(self) -> None:
        while (item := await self._inbox.get()) is not None:
            await self._dispatch(item)
        while self._inbox.qsize():  # arrived after the stop: unacked, the broker keeps them
            leftover = self._inbox.get_nowait()
            if leftover is not None:
                self._leave_to_broker(leftover)
        if self._batches is not None:
            await self._batches.drain()

    def _accept(
        self,
        topic: str,
        payload: bytes,
        mid: int,
        qos: int,
        received_at: str,
        connection: int,
        retained: bool,
    ) -> None:
        """A message from MQTT (the session's handler)."""
        item = _Inbound(topic, payload, mid, qos, received_at, connection)
        stats = self.stats
        stats.received += 1
        if retained and not self.topics.is_status_topic(topic):
            # Sent again at every subscription: forwarded once already, when it was published.
            stats.retained_skipped += 1
            if self._mqtt is not None:
                self._mqtt.ack(item)
            return
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        if stats.in_flight >= self._max_in_flight and self._mqtt is not None:
            self._mqtt.pause()
        # Straight into its record batch, unless earlier messages wait in the queue (order).
        if self._inbox.qsize() or not self._dispatch_now(item):
            self._inbox.put_nowait(item)

    def _dispatch_now(self, item: _Inbound) -> bool:
        """Hand the message to its partition's record batch, or say it has to wait (the topic's
        partition count is not known yet: `_dispatch` asks Kafka)."""
        if self._mqtt is None or item.connection != self._mqtt.connection:
            self._leave_to_broker(item)  # its connection is gone: the broker resends it
            return True
        out = item.out
        if out is None:
            out = item.out = self._router.outgoing(item.topic, item.payload, item.received_at)
        assert self._partitions is not None
        partition = self._partitions.known(out.topic, out.key)
        if partition is None:
            return False
        self._add(item, out, partition)
        return True

    async def _dispatch(self, item: _Inbound) -> None:
        if self._dispatch_now(item):
            return
        out = item.out
        assert out is not None
        assert self._partitions is not None
        try:
            partition = await self._partitions.partition(out.topic, out.key)
        except Exception as exc:  # no metadata: retried like a failed send
            self._retry(item, exc)
            return
        self._add(item, out, partition)

    def _add(self, item: _Inbound, out: Outgoing, partition: int) -> None:
        assert self._batches is not None
        self._batches.add(
            out.topic, partition, out.key, out.value, out.headers, item, alone=out.alone
        )

    # --- Kafka's answer -------------------------------------------------------------------
    def _batch_done(self, entries: list[_Inbound], error: BaseException | None) -> None:
        if error is None:
            self._kafka_errors.succeeded()
            self._backoff.reset()
            for item in entries:
                self._delivered(item)
        elif isinstance(error, asyncio.CancelledError):  # not a refusal: the bridge is stopping
            for item in entries:
                self._leave_to_broker(item)
        else:
            batch_of_one = len(entries) == 1
            for item in entries:
                self._refused(item, error, batch_of_one)

    def _delivered(self, item: _Inbound) -> None:
        mqtt = self._mqtt
        if mqtt is None or not mqtt.ack(item):
            self._leave_to_broker(item)  # in Kafka already; the broker's resend is a duplicate
            return
        stats = self.stats
        rejection = item.out.rejection if item.out is not None else None
        if rejection is None:
            stats.forwarded += 1
        else:
            stats.dlq += 1
            stats.dlq_by_reason[rejection.reason] = stats.dlq_by_reason.get(rejection.reason, 0) + 1
        self._release()

    def _refused(self, item: _Inbound, error: BaseException, batch_of_one: bool) -> None:
        out = item.out
        assert out is not None
        decision = decide(error, alone=out.alone or batch_of_one, dead_letter=out.is_dead_letter)
        if decision is Refusal.ISOLATE:
            out.alone = True  # each in a record batch of its own: which one does Kafka refuse?
            self._inbox.put_nowait(item)
        elif decision is Refusal.DEAD_LETTER:
            out.source = mqtt_source(item.topic)
            entry = item.out = dead_letter(out, error, self.topics.telemetry_dlq)
            assert entry.rejection is not None
            self._rejections.rejected(entry.rejection, out.source)
            self._inbox.put_nowait(item)
        elif decision is Refusal.DROP:
            self._drop(item, out, error)
        else:
            self._retry(item, error)

    def _drop(self, item: _Inbound, out: Outgoing, error: BaseException) -> None:
        """Nowhere left to send it: acked to MQTT, so the broker does not resend it forever."""
        self.stats.dropped += 1
        assert out.rejection is not None
        reason = out.rejection.reason
        self._drops.once(
            reason,
            "a DLQ entry (%s) from %s was dropped: Kafka refuses it even alone (%s); "
            "further ones are only counted",
            reason,
            out.source,
            error,
            level=logging.ERROR,
        )
        mqtt = self._mqtt
        if mqtt is None or not mqtt.ack(item):
            self._leave_to_broker(item)
            return
        self._release()

    def _retry(self, item: _Inbound, exc: BaseException) -> None:
        self.stats.send_failures += 1
        self._kafka_errors.failed(exc)
        if self.stopping or self._mqtt is None or item.connection != self._mqtt.connection:
            self._leave_to_broker(item)
            return
        # Retried messages rejoin the queue at its end: a Kafka outage long enough to fail sends
        # can reorder a machine's batches. Each reading carries its own timestamp, and the
        # writer's points are keyed by it, so storage is unaffected.
        assert self._loop is not None
        timer: asyncio.TimerHandle

        def again() -> None:
            self._retry_timers.discard(timer)
            self._inbox.put_nowait(item)

        timer = self._loop.call_later(self._backoff.next_delay(), again)
        self._retry_timers.add(timer)

    def _release(self) -> None:
        stats = self.stats
        stats.in_flight -= 1
        if stats.in_flight < self._max_in_flight and self._mqtt is not None:
            self._mqtt.resume()

    def _leave_to_broker(self, item: _Inbound) -> None:
        """Not acked on purpose: the broker redelivers it (next connection or next session)."""
        self.stats.left_to_broker += 1
        self._release()
