"""The MQTT -> Kafka bridge: at-least-once, never acknowledging MQTT before Kafka has.

paho-mqtt runs its network loop in its own thread and hands each message to the asyncio loop
(`call_soon_threadsafe`); the loop sends it to Kafka and, once the send future resolved, acks it
through paho (`manual_ack=True`). Payloads pass through byte for byte: parsing is the writer's job.

Memory stays bounded when Kafka stalls: at most `bridge.max_in_flight` messages are unacked. The
broker is told so (MQTT 5 Receive Maximum) and stops sending; a broker that ignores it meets a
semaphore that blocks paho's thread, so TCP flow control takes over.

The session is persistent (fixed client id, clean_start=False, long session expiry), so the
broker queues what gateways publish while the bridge is down, and redelivers what the bridge had
not acked. Several bridges share the load through `$share/<group>/...` subscriptions.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from aiokafka.errors import MessageSizeTooLargeError
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.config import IngestConfig
from ingest.dlq import (
    OVERSIZED_KEEP_BYTES,
    Headers,
    Rejection,
    RejectionLog,
    check_payload_size,
    dlq_headers,
    route_mqtt,
)
from ingest.kafka_clients import (
    KeyPartitions,
    Producer,
    ProducerFactory,
    make_producer,
    start_client,
)
from ingest.metrics import IngestMetrics
from plantmesh.kafka_admin import ensure_topics
from plantmesh.resilience import Backoff, ErrorLog, StopRequestedError, retry_until_stopped
from plantmesh.topics import HEADER_MQTT_TOPIC, HEADER_RECEIVED_AT

log = logging.getLogger(__name__)

REASON_KAFKA_REJECTED = "kafka_rejected"
# How often paho's thread, waiting for a free in-flight slot, checks whether to give up.
_SLOT_POLL_S = 0.2


@dataclass
class BridgeStats:
    """Counters, read by tests and (later) metrics. Changed only on the asyncio loop."""

    received: int = 0
    forwarded: int = 0
    """Acked by Kafka on telemetry.raw or gateway.status, then acked to MQTT."""
    dlq: int = 0
    """Acked by Kafka on telemetry.dlq, then acked to MQTT."""
    dlq_by_reason: dict[str, int] = field(default_factory=dict)
    send_failures: int = 0
    """Kafka sends that failed and were retried."""
    left_to_broker: int = 0
    """Messages not acked on purpose (connection lost or shutdown): the broker redelivers them."""
    in_flight: int = 0
    peak_in_flight: int = 0
    connects: int = 0


@dataclass(frozen=True)
class _Outbound:
    kafka_topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    rejection: Rejection | None = None
    """Set for the DLQ: why the message is there."""


@dataclass(frozen=True)
class _Inbound:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: str
    connection: int
    """Which MQTT connection delivered it: an ack only means something on that connection."""
    reroute: _Outbound | None = None
    """Set when Kafka refused the first attempt for good and the message goes to the DLQ."""


class Bridge:
    """`await Bridge(config).run()` until `stop()`; `ready` is set once the MQTT subscriptions
    are granted. One run per instance."""

    def __init__(
        self, config: IngestConfig, *, producer_factory: ProducerFactory | None = None
    ) -> None:
        self.config = config
        self.topics = config.topics
        self.stats = BridgeStats()
        self.metrics = IngestMetrics("bridge")
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._producer_factory = producer_factory or (lambda: make_producer(config.kafka, "bridge"))
        self._producer: Producer | None = None
        self._partitions: KeyPartitions | None = None
        self._mqtt: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: asyncio.Queue[_Inbound | None] = asyncio.Queue()
        self._pending: set[asyncio.Future[Any]] = set()
        self._retry_timers: set[asyncio.TimerHandle] = set()
        self._slots = threading.Semaphore(config.bridge.max_in_flight)
        self._handoff: collections.deque[_Inbound] = collections.deque()
        self._handoff_lock = threading.Lock()
        self._wakeup_pending = False
        self._accepting = threading.Event()
        self._connection = 0  # written by paho's thread on connect, read by the loop
        self._backoff = Backoff(config.backoff.initial_s, config.backoff.max_s)
        self._kafka_errors = ErrorLog(log, "Kafka send")
        self._mqtt_errors = ErrorLog(log, "MQTT connect")
        self._rejections = RejectionLog(log)
        self._started = False

    def stop(self) -> None:
        """Ask `run()` to finish: stop taking MQTT messages, drain, disconnect."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

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
        client = self._make_mqtt_client()
        self.metrics.serve(self.config.bridge.metrics)
        self._accepting.set()
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
            client.loop_start()
            async with asyncio.TaskGroup() as tasks:
                forward = tasks.create_task(self._forward_loop(), name="ingest-bridge-forward")
                tasks.create_task(self._shutdown_on_stop(forward), name="ingest-bridge-shutdown")
        finally:
            self._accepting.clear()
            for timer in self._retry_timers:
                timer.cancel()
            self._retry_timers.clear()
            client.disconnect()  # queued behind the acks already sent
            await asyncio.to_thread(client.loop_stop)
            await producer.stop()
            self.metrics.close()
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

        self._producer = await retry_until_stopped(
            start, stop=self._stop, backoff=backoff, errors=ErrorLog(log, "Kafka producer start")
        )
        self._partitions = KeyPartitions(self._producer)
        return self._producer

    async def _shutdown_on_stop(self, forward: asyncio.Task[None]) -> None:
        await self._stop.wait()
        self._accepting.clear()  # paho's thread stops handing over; the broker keeps the rest
        self._inbox.put_nowait(None)
        done, _ = await asyncio.wait({forward}, timeout=self.config.bridge.drain_timeout_s)
        if not done:
            log.warning(
                "Kafka did not acknowledge everything in time; the broker will redeliver the rest",
                extra={"in_flight": self.stats.in_flight},
            )
            forward.cancel()

    # --- the asyncio side -----------------------------------------------------------------
    async def _forward_loop(self) -> None:
        while (item := await self._inbox.get()) is not None:
            await self._dispatch(item)
        while self._inbox.qsize():  # arrived after the stop: unacked, the broker keeps them
            leftover = self._inbox.get_nowait()
            if leftover is not None:
                self._leave_to_broker(leftover)
        if self._pending:
            await asyncio.wait(set(self._pending))

    def _outbound(self, item: _Inbound) -> _Outbound:
        headers: Headers = [
            (HEADER_MQTT_TOPIC, item.topic.encode()),
            (HEADER_RECEIVED_AT, item.received_at.encode()),
        ]
        rejection = check_payload_size(item.payload, self.config.bridge.max_payload_bytes)
        route = rejection or route_mqtt(self.topics, item.topic)
        if isinstance(route, Rejection):
            value = item.payload
            if rejection is not None:
                value = value[: min(self.config.bridge.max_payload_bytes, OVERSIZED_KEEP_BYTES)]
            return self._to_dlq(item, value, headers, route)
        return _Outbound(route.kafka_topic, route.key, item.payload, headers)

    def _to_dlq(
        self, item: _Inbound, value: bytes, headers: Headers, rejection: Rejection
    ) -> _Outbound:
        source = f"mqtt:{item.topic}"
        self._rejections.rejected(rejection, source)
        headers = dlq_headers(headers, rejection, source)
        return _Outbound(self.topics.telemetry_dlq, None, value, headers, rejection)

    async def _dispatch(self, item: _Inbound) -> None:
        if item.connection != self._connection:
            self._leave_to_broker(item)  # its connection is gone: the broker resends it
            return
        out = item.reroute or self._outbound(item)
        assert self._producer is not None
        assert self._partitions is not None
        try:
            partition = await self._partitions.partition(out.kafka_topic, out.key)
            future = await self._producer.send(
                out.kafka_topic,
                value=out.value,
                key=out.key,
                headers=out.headers,
                partition=partition,
            )
        except Exception as exc:  # every send failure is retried or rerouted, none is fatal
            self._send_failed(item, out, exc)
            return
        delivery = asyncio.ensure_future(future)
        self._pending.add(delivery)
        delivery.add_done_callback(lambda done: self._delivered(item, out, done))

    def _delivered(self, item: _Inbound, out: _Outbound, delivery: asyncio.Future[Any]) -> None:
        self._pending.discard(delivery)
        if delivery.cancelled():
            self._leave_to_broker(item)
            return
        exc = delivery.exception()
        if exc is not None:
            self._send_failed(item, out, exc)
            return
        self._kafka_errors.succeeded()
        self._backoff.reset()
        if item.connection != self._connection or self._mqtt is None:
            self._leave_to_broker(item)  # in Kafka already; the broker's resend is a duplicate
            return
        self._mqtt.ack(item.mid, item.qos)
        if out.rejection is not None:
            self.stats.dlq += 1
            reason = out.rejection.reason
            self.stats.dlq_by_reason[reason] = self.stats.dlq_by_reason.get(reason, 0) + 1
            self.metrics.rejected(reason)
        else:
            self.stats.forwarded += 1
            self.metrics.forwarded.inc()
        self._release()

    def _send_failed(self, item: _Inbound, out: _Outbound, exc: BaseException) -> None:
        if isinstance(exc, MessageSizeTooLargeError) and out.rejection is None:
            # Kafka will never take it: send what it can take to the DLQ instead.
            rejection = Rejection(REASON_KAFKA_REJECTED, f"{type(exc).__name__}: {exc}")
            dlq = self._to_dlq(item, out.value[:OVERSIZED_KEEP_BYTES], out.headers, rejection)
            self._inbox.put_nowait(replace(item, reroute=dlq))
            return
        self.stats.send_failures += 1
        self._kafka_errors.failed(exc)
        if self.stopping or item.connection != self._connection:
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
        self.stats.in_flight -= 1
        self._slots.release()

    def _leave_to_broker(self, item: _Inbound) -> None:
        """Not acked on purpose: the broker redelivers it (next connection or next session)."""
        self.stats.left_to_broker += 1
        self._release()

    def _accept(self, item: _Inbound) -> None:
        self.stats.received += 1
        self.metrics.messages.inc()
        self.stats.in_flight += 1
        self.stats.peak_in_flight = max(self.stats.peak_in_flight, self.stats.in_flight)
        self._inbox.put_nowait(item)

    # --- paho's thread --------------------------------------------------------------------
    def _make_mqtt_client(self) -> mqtt.Client:
        conn = self.config.mqtt
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.config.bridge_client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        client.enable_logger(logging.getLogger("paho.mqtt"))
        client.suppress_exceptions = True
        if conn.username is not None:
            password = conn.password.get_secret_value() if conn.password else None
            client.username_pw_set(conn.username, password)
        if conn.tls:
            client.tls_set(ca_certs=conn.ca_file)
        client.reconnect_delay_set(1, max(1, int(self.config.backoff.max_s)))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.config.bridge.session_expiry_s
        properties.ReceiveMaximum = self.config.bridge.max_in_flight
        client.connect_async(
            conn.host, conn.port, conn.keepalive_s, clean_start=False, properties=properties
        )
        self._mqtt = client
        return client

    def _call_in_loop(self, callback: Any, *args: Any) -> None:
        assert self._loop is not None
        # RuntimeError: the loop is closing, there is nothing left to hand over to.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, *args)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._mqtt_errors.failed(ConnectionError(f"broker refused: {reason_code}"))
            return
        self._connection += 1
        self._mqtt_errors.succeeded()
        self._call_in_loop(self._count_connect)
        log.info(
            "MQTT connected",
            extra={"session_present": flags.session_present, "broker": self.config.mqtt.url},
        )
        group = self.config.bridge.shared_group
        filters = (self.topics.mqtt_readings_filter, self.topics.mqtt_status_filter)
        client.subscribe([(f"$share/{group}/{f}", SubscribeOptions(qos=1)) for f in filters])

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._mqtt_errors.failed(ConnectionError(f"cannot reach {self.config.mqtt.url}"))

    def _count_connect(self) -> None:
        self.stats.connects += 1

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        failed = [str(code) for code in reason_codes if code.is_failure]
        if failed:
            log.error("MQTT subscription refused", extra={"reasons": failed})
            return
        log.info("MQTT subscribed", extra={"group": self.config.bridge.shared_group})
        self._call_in_loop(self.ready.set)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self._accepting.is_set():
            self._mqtt_errors.failed(ConnectionError(f"disconnected: {reason_code}"))

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        received_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if not self._accepting.is_set():
            return  # not acked: the broker redelivers it to the next session
        # Bounded in-flight: block paho's thread (and so the socket) until a slot frees up.
        while not self._slots.acquire(timeout=_SLOT_POLL_S):
            if not self._accepting.is_set():
                return
        try:
            topic = message.topic
        except UnicodeDecodeError:  # not ours by definition; keep it readable in the DLQ
            topic = bytes(message._topic).decode("utf-8", errors="replace")
        item = _Inbound(
            topic=topic,
            payload=bytes(message.payload),
            mid=message.mid,
            qos=message.qos,
            received_at=received_at,
            connection=self._connection,
        )
        # Hand over in bulk: one loop wake-up (a self-pipe write) per burst, not per message.
        with self._handoff_lock:
            self._handoff.append(item)
            if self._wakeup_pending:
                return
            self._wakeup_pending = True
        self._call_in_loop(self._take_handoff)

    def _take_handoff(self) -> None:
        with self._handoff_lock:
            items = list(self._handoff)
            self._handoff.clear()
            self._wakeup_pending = False
        for item in items:
            self._accept(item)
