"""The MQTT -> Kafka bridge: at-least-once, never acknowledging MQTT before Kafka has.

paho-mqtt runs on the asyncio loop, not in a thread of its own: its socket's reads and writes are
loop callbacks (paho's external-loop API: loop_read, loop_write, loop_misc), so a message goes
from the socket to the Kafka producer, and its ack back to the socket, without a thread hand-off,
a wake-up pipe or the two threads fighting over the GIL (which cost more than paho itself).
Messages go to Kafka a record batch per partition (plantmesh.kafka.batches); once Kafka acknowledged
a batch, each of its messages is acked through paho (`manual_ack=True`). Payloads pass through
byte for byte: parsing is the writer's job.

Memory stays bounded when Kafka stalls: at most `bridge.max_in_flight` messages are unacked. The
broker is told so (MQTT 5 Receive Maximum) and stops sending; from a broker that ignores it the
bridge stops reading, so TCP flow control takes over.

The session is persistent (fixed client id, clean_start=False, long session expiry), so the
broker queues what gateways publish while the bridge is down, and redelivers what the bridge had
not acked. Several bridges share the load through `$share/<group>/...` subscriptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
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

from ingest.bridge.routing import KafkaDestination, check_payload_size, route_mqtt
from ingest.config import IngestConfig
from ingest.metrics import IngestMetrics
from plantmesh.dead_letters import (
    OVERSIZED_KEEP_BYTES,
    Headers,
    Rejection,
    RejectionLog,
    dlq_headers,
)
from plantmesh.kafka.admin import ensure_topics
from plantmesh.kafka.batches import PartitionBatches
from plantmesh.kafka.clients import (
    KeyPartitions,
    Producer,
    ProducerFactory,
    make_producer,
    start_client,
)
from plantmesh.resilience import Backoff, ErrorLog, StopRequestedError, retry_until_stopped
from plantmesh.topics import HEADER_MQTT_TOPIC, HEADER_RECEIVED_AT, DlqReason

log = logging.getLogger(__name__)

ROUTE_CACHE_SIZE = 100_000
# paho's loop_read reads one packet: read a few per wake-up of the loop.
_READ_BURST = 64
# How often paho checks keepalive (it sends PINGREQ when due and drops a silent connection).
_MISC_INTERVAL_S = 1.0


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
    subscribed: int = 0
    """Subscriptions granted: once per connection."""


@dataclass(slots=True)  # not frozen: made per message, and frozen costs ~0.7 µs
class _Outbound:
    kafka_topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    rejection: Rejection | None = None
    """Set for the DLQ: why the message is there."""


@dataclass(slots=True)
class _Inbound:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: str
    connection: int
    """Which MQTT connection delivered it: an ack only means something on that connection."""
    outbound: _Outbound | None = None
    """What goes to Kafka, once worked out; replaced by a DLQ entry when Kafka refused it."""
    alone: bool = False
    """Send in a record batch of its own: Kafka refused a batch it was in as too large."""


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
        self._batches: PartitionBatches[tuple[_Inbound, _Outbound]] | None = None
        self._mqtt: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: asyncio.Queue[_Inbound | None] = asyncio.Queue()
        self._retry_timers: set[asyncio.TimerHandle] = set()
        self._accepting = False
        self._connection = 0  # counts MQTT connections: an ack only means something on its own
        self._connected = False  # CONNACK received and the socket still open
        self._lost = asyncio.Event()  # the socket closed: reconnect
        self._fd: int | None = None  # the MQTT socket, while the loop watches it
        self._reading = False
        self._routes: dict[str, tuple[KafkaDestination | Rejection, bytes]] = {}
        self._clock_ms = 0  # received_at of the last message, by millisecond
        self._clock_text = ""
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

    @property
    def connected(self) -> bool:
        """Connected to the MQTT broker (CONNACK received, socket open)."""
        return self._connected

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
        self._accepting = True
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
                connection = tasks.create_task(self._mqtt_loop(client), name="ingest-bridge-mqtt")
                tasks.create_task(
                    self._shutdown_on_stop(forward, connection), name="ingest-bridge-shutdown"
                )
        finally:
            self._accepting = False
            if self._batches is not None:
                await self._batches.close()  # unacked: the broker redelivers them
            for timer in self._retry_timers:
                timer.cancel()
            self._retry_timers.clear()
            if client.socket() is not None:
                client.disconnect()  # queued behind the acks already sent
                client.loop_write()  # sends them all, then closes the socket
            self._unwatch()
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
        self._batches = PartitionBatches(self._producer, self._batch_done)
        return self._producer

    async def _shutdown_on_stop(
        self, forward: asyncio.Task[None], connection: asyncio.Task[None]
    ) -> None:
        await self._stop.wait()
        self._accepting = False  # take no more messages; the broker keeps the rest
        self._inbox.put_nowait(None)
        done, _ = await asyncio.wait({forward}, timeout=self.config.bridge.drain_timeout_s)
        if not done:
            log.warning(
                "Kafka did not acknowledge everything in time; the broker will redeliver the rest",
                extra={"in_flight": self.stats.in_flight},
            )
            forward.cancel()
        connection.cancel()  # the acks are written; `run` disconnects

    # --- MQTT on the loop -----------------------------------------------------------------
    async def _mqtt_loop(self, client: mqtt.Client) -> None:
        """Connect, keep alive, reconnect with capped backoff. The blocking TCP connect runs in
        a thread; everything after it (CONNACK, messages, acks) on the loop."""
        backoff = Backoff(self.config.backoff.initial_s, self.config.backoff.max_s)
        while True:
            self._lost.clear()
            try:
                await asyncio.to_thread(client.reconnect)
            except (OSError, ValueError) as exc:  # refused, unreachable, timed out
                self._mqtt_errors.failed(exc)
                await asyncio.sleep(backoff.next_delay())
                continue
            while not self._lost.is_set():
                try:
                    async with asyncio.timeout(_MISC_INTERVAL_S):  # wait_for can lose a cancel
                        await self._lost.wait()
                except TimeoutError:
                    client.loop_misc()
                    if self._connected:
                        backoff.reset()
            await asyncio.sleep(backoff.next_delay())

    def _on_loop(self, callback: Any, *args: Any) -> None:
        """Run on the loop: paho calls the socket callbacks from the connecting thread too."""
        loop = self._loop
        assert loop is not None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            callback(*args)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(callback, *args)

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._watch, sock.fileno())

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._connected = False
        self._on_loop(self._socket_closed, sock.fileno())

    def _on_socket_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._want_write, sock.fileno(), True)

    def _on_socket_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._want_write, sock.fileno(), False)

    def _watch(self, fd: int) -> None:
        if not self._accepting:
            return  # connected just as `run` ended: paho's socket is dropped with the client
        self._fd = fd
        self._resume_reading()

    def _socket_closed(self, fd: int) -> None:
        if self._fd == fd:
            self._unwatch()
        self._lost.set()

    def _unwatch(self) -> None:
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
        self._fd = None
        self._reading = False

    def _want_write(self, fd: int, wanted: bool) -> None:
        if fd != self._fd or self._loop is None or self._mqtt is None:
            return
        if wanted:
            self._loop.add_writer(fd, self._mqtt.loop_write)
        else:
            self._loop.remove_writer(fd)

    def _resume_reading(self) -> None:
        if not self._reading and self._fd is not None and self._loop is not None:
            self._reading = True
            self._loop.add_reader(self._fd, self._read)

    def _pause_reading(self) -> None:
        if self._reading and self._fd is not None and self._loop is not None:
            self._reading = False
            self._loop.remove_reader(self._fd)

    def _read(self) -> None:
        """The socket has data: read packets until it has none or the in-flight limit is hit."""
        client = self._mqtt
        assert client is not None
        before = self.stats.received
        try:
            for _ in range(_READ_BURST):
                received = self.stats.received
                if client.loop_read() != mqtt.MQTT_ERR_SUCCESS:
                    return
                if self.stats.received == received or not self._reading:
                    return  # no message came (an ack, a ping, or half a packet), or paused
        finally:
            self.metrics.messages.inc(self.stats.received - before)  # once a burst: ~3 µs

    # --- the asyncio side -----------------------------------------------------------------
    async def _forward_loop(self) -> None:
        while (item := await self._inbox.get()) is not None:
            await self._dispatch(item)
        while self._inbox.qsize():  # arrived after the stop: unacked, the broker keeps them
            leftover = self._inbox.get_nowait()
            if leftover is not None:
                self._leave_to_broker(leftover)
        if self._batches is not None:
            await self._batches.drain()

    def _route(self, topic: str) -> tuple[KafkaDestination | Rejection, bytes]:
        """The route of an MQTT topic and its header value, remembered: a bridge sees the same
        few thousand machine topics over and over."""
        found = self._routes.get(topic)
        if found is None:
            if len(self._routes) >= ROUTE_CACHE_SIZE:
                self._routes.clear()
            found = self._routes[topic] = (route_mqtt(self.topics, topic), topic.encode())
        return found

    def _outbound(self, item: _Inbound) -> _Outbound:
        route, topic_header = self._route(item.topic)
        headers: Headers = [
            (HEADER_MQTT_TOPIC, topic_header),
            (HEADER_RECEIVED_AT, item.received_at.encode()),
        ]
        rejection = check_payload_size(item.payload, self.config.bridge.max_payload_bytes)
        route = rejection or route
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

    def _dispatch_now(self, item: _Inbound) -> bool:
        """Hand the message to its partition's record batch, or say it has to wait (the topic's
        partition count is not known yet: `_dispatch` asks Kafka)."""
        if item.connection != self._connection:
            self._leave_to_broker(item)  # its connection is gone: the broker resends it
            return True
        out = item.outbound
        if out is None:
            out = item.outbound = self._outbound(item)
        assert self._partitions is not None
        partition = self._partitions.known(out.kafka_topic, out.key)
        if partition is None:
            return False
        self._add(item, out, partition)
        return True

    async def _dispatch(self, item: _Inbound) -> None:
        if self._dispatch_now(item):
            return
        out = item.outbound
        assert out is not None
        assert self._partitions is not None
        try:
            partition = await self._partitions.partition(out.kafka_topic, out.key)
        except Exception as exc:  # no metadata: retried like a failed send
            self._send_failed(item, out, exc)
            return
        self._add(item, out, partition)

    def _add(self, item: _Inbound, out: _Outbound, partition: int) -> None:
        assert self._batches is not None
        self._batches.add(
            out.kafka_topic,
            partition,
            out.key,
            out.value,
            out.headers,
            (item, out),
            alone=item.alone,
        )

    def _batch_done(
        self, entries: list[tuple[_Inbound, _Outbound]], error: BaseException | None
    ) -> None:
        if error is None:
            self._kafka_errors.succeeded()
            self._backoff.reset()
            forwarded = self.stats.forwarded
            for item, out in entries:
                self._delivered(item, out)
            self.metrics.forwarded.inc(self.stats.forwarded - forwarded)  # once a batch
        elif isinstance(error, asyncio.CancelledError):
            for item, _ in entries:
                self._leave_to_broker(item)
        elif isinstance(error, MessageSizeTooLargeError) and len(entries) > 1:
            for item, _ in entries:  # find the one Kafka objects to: each in a batch of its own
                item.alone = True
                self._inbox.put_nowait(item)
        else:
            for item, out in entries:
                self._send_failed(item, out, error)

    def _delivered(self, item: _Inbound, out: _Outbound) -> None:
        if item.connection != self._connection or not self._connected or self._mqtt is None:
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
        self._release()

    def _send_failed(self, item: _Inbound, out: _Outbound, exc: BaseException) -> None:
        if isinstance(exc, MessageSizeTooLargeError) and out.rejection is None:
            # Kafka will never take it: send what it can take to the DLQ instead.
            rejection = Rejection(DlqReason.KAFKA_REJECTED, f"{type(exc).__name__}: {exc}")
            dlq = self._to_dlq(item, out.value[:OVERSIZED_KEEP_BYTES], out.headers, rejection)
            self._inbox.put_nowait(replace(item, outbound=dlq, alone=False))
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
        if self.stats.in_flight < self.config.bridge.max_in_flight:
            self._resume_reading()

    def _leave_to_broker(self, item: _Inbound) -> None:
        """Not acked on purpose: the broker redelivers it (next connection or next session)."""
        self.stats.left_to_broker += 1
        self._release()

    def _accept(self, item: _Inbound) -> None:
        self.stats.received += 1
        self.stats.in_flight += 1
        self.stats.peak_in_flight = max(self.stats.peak_in_flight, self.stats.in_flight)
        if self.stats.in_flight >= self.config.bridge.max_in_flight:
            self._pause_reading()
        # Straight into its record batch, unless earlier messages wait in the queue (order).
        if self._inbox.qsize() or not self._dispatch_now(item):
            self._inbox.put_nowait(item)

    # --- paho callbacks (on the loop, but for the socket's in `_on_loop`) -------------------
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
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_socket_register_write
        client.on_socket_unregister_write = self._on_socket_unregister_write
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.config.bridge.session_expiry_s
        properties.ReceiveMaximum = self.config.bridge.max_in_flight
        client.connect_async(
            conn.host, conn.port, conn.keepalive_s, clean_start=False, properties=properties
        )
        self._mqtt = client
        return client

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
        self._connected = True
        self._mqtt_errors.succeeded()
        self.stats.connects += 1
        log.info(
            "MQTT connected",
            extra={"session_present": flags.session_present, "broker": self.config.mqtt.url},
        )
        group = self.config.bridge.shared_group
        filters = (self.topics.mqtt_readings_filter, self.topics.mqtt_status_filter)
        client.subscribe([(f"$share/{group}/{f}", SubscribeOptions(qos=1)) for f in filters])

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._mqtt_errors.failed(ConnectionError(f"cannot reach {self.config.mqtt.url}"))

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
        self.stats.subscribed += 1
        self.ready.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected = False
        if self._accepting:
            self._mqtt_errors.failed(ConnectionError(f"disconnected: {reason_code}"))

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if not self._accepting:
            return  # not acked: the broker redelivers it to the next session
        now_ms = time.time_ns() // 1_000_000
        if now_ms != self._clock_ms:  # a burst shares its millisecond: format it once
            self._clock_ms = now_ms
            moment = datetime.fromtimestamp(now_ms / 1000, UTC)
            self._clock_text = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        received_at = self._clock_text
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
        self._accept(item)
