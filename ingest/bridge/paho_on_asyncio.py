"""paho-mqtt driven from the asyncio loop: the bridge's persistent MQTT session, messages in and
acks out.

paho runs on the asyncio loop, not in a thread of its own: its socket's reads and writes are
loop callbacks (paho's external-loop API: loop_read, loop_write, loop_misc), so a message goes
from the socket to its handler, and its ack back to the socket, without a thread hand-off, a
wake-up pipe or two threads fighting over the GIL (which cost more than paho itself). Only the
blocking TCP connect runs in a thread.

The session is persistent (fixed client id, clean_start=False, long session expiry), so the
broker queues what gateways publish while the bridge is down, and redelivers what it had not
acked. Acks are manual (`manual_ack=True`) and only mean something on the connection that
delivered the message. The broker sends at most `receive_maximum` unacked messages (MQTT 5
Receive Maximum); from a broker that ignores it, `pause()` stops reading, so TCP flow control
takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from plantmesh.connections import BackoffSettings, MqttConnection
from plantmesh.resilience import Backoff, ErrorLog

log = logging.getLogger(__name__)

# paho's loop_read reads one packet: read a few per wake-up of the loop.
_READ_BURST = 64
# How often paho checks keepalive (it sends PINGREQ when due and drops a silent connection).
_MISC_INTERVAL_S = 1.0
LEAVE_QUIET_S = 0.3
"""Leaving the group: no message for this long after the UNSUBACK means the broker has sent
everything it had routed to this session (it sends queued messages as soon as acks free room)."""

MessageHandler = Callable[[str, bytes, int, int, str, int, bool], None]
"""Called on the loop with (topic, payload, mid, qos, received_at, connection, retained) of each
message; received_at is ISO 8601 UTC to the millisecond; retained: the broker's stored copy,
sent because a subscription was (re)made, not a new publish."""


class Delivery(Protocol):
    """What `ack` needs of a message."""

    @property
    def mid(self) -> int: ...
    @property
    def qos(self) -> int: ...
    @property
    def connection(self) -> int: ...


class PahoSession:
    """`await run()` connects and reconnects until cancelled; then `disconnect()`. Make it on
    the loop it runs on."""

    def __init__(
        self,
        conn: MqttConnection,
        *,
        client_id: str,
        filters: Sequence[str],
        receive_maximum: int,
        session_expiry_s: int,
        backoff: BackoffSettings,
        on_message: MessageHandler,
        on_connected: Callable[[], None],
        on_subscribed: Callable[[], None],
    ) -> None:
        self._conn = conn
        self._filters = list(filters)
        self._backoff = backoff
        self._on_message_handler = on_message
        self._on_connected = on_connected
        self._on_subscribed = on_subscribed
        self._loop = asyncio.get_running_loop()
        self.connection = 0
        """Counts connections: a message's ack only means something on the one that brought it."""
        self._connected = False  # CONNACK received and the socket still open
        self._taking = True  # take messages; False once stopping (the broker keeps the rest)
        self._got_message = False  # the last loop_read delivered a message
        self._lost = asyncio.Event()  # the socket closed: reconnect
        self._fd: int | None = None  # the socket, while the loop watches it
        self._reading = False
        self._clock_ms = 0  # received_at of the last message, by millisecond
        self._clock_text = ""
        self._errors = ErrorLog(log, "MQTT connect")
        self._leaving = False  # unsubscribed on purpose: not subscribed again on a reconnect
        self._left = asyncio.Event()  # UNSUBACK received
        self._took = asyncio.Event()  # a message was taken (leaving waits for a quiet spell)
        self._client = self._make_client(client_id, receive_maximum, session_expiry_s)

    @property
    def connected(self) -> bool:
        """CONNACK received and the socket open."""
        return self._connected

    def ack(self, message: Delivery) -> bool:
        """Ack on the connection that delivered `message`; False if that connection is gone (the
        broker redelivers it)."""
        if message.connection != self.connection or not self._connected:
            return False
        self._client.ack(message.mid, message.qos)
        return True

    def pause(self) -> None:
        """Stop reading the socket (too many messages unacked)."""
        if self._reading and self._fd is not None:
            self._reading = False
            self._loop.remove_reader(self._fd)

    def resume(self) -> None:
        if not self._reading and self._fd is not None:
            self._reading = True
            self._loop.add_reader(self._fd, self._read)

    async def leave(self, timeout_s: float, busy: Callable[[], bool]) -> bool:
        """Unsubscribe from every filter, then go on taking what the broker had routed to this
        session already until none came for LEAVE_QUIET_S and `busy()` (messages in flight) is
        false. False when not connected or the broker did not answer within `timeout_s`."""
        if not self._connected:
            return False
        self._leaving = True
        self._client.unsubscribe(self._filters)
        try:
            async with asyncio.timeout(timeout_s):
                await self._left.wait()
                while not await self._quiet(LEAVE_QUIET_S) or busy():
                    pass
        except TimeoutError:
            log.warning(
                "leaving the shared subscription took too long",
                extra={"unsubscribed": self._left.is_set()},
            )
            return False
        return True

    async def _quiet(self, seconds: float) -> bool:
        """True when no message came for `seconds`."""
        self._took.clear()
        try:
            async with asyncio.timeout(seconds):
                await self._took.wait()
        except TimeoutError:
            return True
        return False

    def stop_taking(self) -> None:
        """Take no more messages: the broker keeps them. Acks still go out."""
        self._taking = False

    def disconnect(self) -> None:
        """Send the acks already queued, then disconnect; after `run` ended."""
        self._taking = False
        client = self._client
        if client.socket() is not None:
            client.disconnect()  # queued behind the acks already sent
            client.loop_write()  # sends them all, then closes the socket
        self._unwatch()

    async def run(self) -> None:
        """Connect, keep alive, reconnect with capped backoff. The blocking TCP connect runs in
        a thread; everything after it (CONNACK, messages, acks) on the loop."""
        client = self._client
        backoff = Backoff(self._backoff.initial_s, self._backoff.max_s)
        while True:
            self._lost.clear()
            try:
                await asyncio.to_thread(client.reconnect)
            except (OSError, ValueError) as exc:  # refused, unreachable, timed out
                self._errors.failed(exc)
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

    def _make_client(
        self, client_id: str, receive_maximum: int, session_expiry_s: int
    ) -> mqtt.Client:
        conn = self._conn
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        client.enable_logger(logging.getLogger("paho.mqtt"))
        client.suppress_exceptions = True
        if conn.username is not None:
            client.username_pw_set(conn.username, conn.password_value())
        if conn.tls:
            client.tls_set(ca_certs=conn.ca_file)
        client.reconnect_delay_set(1, max(1, int(self._backoff.max_s)))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        client.on_message = self._on_message
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_socket_register_write
        client.on_socket_unregister_write = self._on_socket_unregister_write
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = session_expiry_s
        properties.ReceiveMaximum = receive_maximum
        client.connect_async(
            conn.host, conn.port, conn.keepalive_s, clean_start=False, properties=properties
        )
        return client

    # --- the socket on the loop -------------------------------------------------------------
    def _on_loop(self, callback: Any, *args: Any) -> None:
        """Run on the loop: paho calls the socket callbacks from the connecting thread too."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            callback(*args)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                self._loop.call_soon_threadsafe(callback, *args)

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
        if not self._taking:
            return  # connected just as the bridge stopped: the socket is dropped with the client
        self._fd = fd
        self.resume()

    def _socket_closed(self, fd: int) -> None:
        if self._fd == fd:
            self._unwatch()
        self._lost.set()

    def _unwatch(self) -> None:
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
        self._fd = None
        self._reading = False

    def _want_write(self, fd: int, wanted: bool) -> None:
        if fd != self._fd:
            return
        if wanted:
            self._loop.add_writer(fd, self._client.loop_write)
        else:
            self._loop.remove_writer(fd)

    def _read(self) -> None:
        """The socket has data: read packets until it has none or reading is paused."""
        client = self._client
        for _ in range(_READ_BURST):
            self._got_message = False
            if client.loop_read() != mqtt.MQTT_ERR_SUCCESS:
                return
            if not self._got_message or not self._reading:
                return  # no message came (an ack, a ping, or half a packet), or paused

    # --- paho callbacks (on the loop, but for the socket's in `_on_loop`) -------------------
    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._errors.failed(ConnectionError(f"broker refused: {reason_code}"))
            return
        self.connection += 1
        self._connected = True
        self._errors.succeeded()
        self._on_connected()
        log.info(
            "MQTT connected",
            extra={"session_present": flags.session_present, "broker": self._conn.url},
        )
        if not self._leaving:
            client.subscribe([(f, SubscribeOptions(qos=1)) for f in self._filters])

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._errors.failed(ConnectionError(f"cannot reach {self._conn.url}"))

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
        log.info("MQTT subscribed", extra={"filters": self._filters})
        self._on_subscribed()

    def _on_unsubscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        log.info(
            "MQTT unsubscribed: left the shared subscription", extra={"filters": self._filters}
        )
        self._left.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected = False
        if self._taking:
            self._errors.failed(ConnectionError(f"disconnected: {reason_code}"))

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if not self._taking:
            return  # not acked: the broker redelivers it to the next session
        now_ms = time.time_ns() // 1_000_000
        if now_ms != self._clock_ms:  # a burst shares its millisecond: format it once
            self._clock_ms = now_ms
            moment = datetime.fromtimestamp(now_ms / 1000, UTC)
            self._clock_text = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        try:
            topic = message.topic
        except UnicodeDecodeError:  # not ours by definition; keep it readable in the DLQ
            topic = bytes(message._topic).decode("utf-8", errors="replace")
        self._got_message = True
        self._took.set()
        self._on_message_handler(
            topic,
            bytes(message.payload),
            message.mid,
            message.qos,
            self._clock_text,
            self.connection,
            bool(message.retain),
        )
