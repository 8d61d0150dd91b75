"""One MQTT connection: a paho-mqtt client running its network loop in its own thread, with its
callbacks handed over to the asyncio loop.

Each connection gets a fresh paho client that never reconnects by itself: paho would otherwise
resend its own copy of unacknowledged messages after a reconnect, while the publisher already
republishes them from its buffer (the buffer, not paho, is the one place unsent batches live).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.config import MqttSettings
from edge_agent.errors import PublishError

log = logging.getLogger(__name__)

AckCallback = Callable[["MqttLink", int, bool], None]
"""(link, mid, accepted): the broker acknowledged message `mid` (QoS 1 PUBACK)."""

_link_ids = itertools.count(1)

MAX_INFLIGHT = 100
"""Unacknowledged QoS 1 messages per connection (paho's window, and the publisher's)."""


class MqttLink:
    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        will: tuple[str, bytes],
        on_ack: AckCallback,
        on_lost: Callable[[], None] = lambda: None,
        max_inflight: int = MAX_INFLIGHT,
    ) -> None:
        self.id = next(_link_ids)
        self.settings = settings
        self._loop = asyncio.get_running_loop()
        self._on_ack = on_ack
        self._on_lost = on_lost
        # A ReasonCode from CONNACK, or the text of why the connection closed before it.
        self._connack: asyncio.Future[ReasonCode | str] = self._loop.create_future()
        self.disconnected = asyncio.Event()
        self.disconnect_reason = ""
        self._started = False
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=False,
        )
        if settings.username is not None:
            try:
                password = settings.password_value()
            except ValueError as exc:  # a password file that is not there (yet)
                raise PublishError(str(exc)) from None
            client.username_pw_set(settings.username, password)
        if settings.tls:
            try:
                client.tls_set(
                    ca_certs=settings.ca_file,
                    certfile=settings.cert_file,
                    keyfile=settings.key_file,
                )
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                raise PublishError(f"TLS setup failed: {exc}") from None
        client.max_inflight_messages_set(max_inflight)
        client.will_set(will[0], will[1], qos=1, retain=True)
        client.on_connect = self._paho_on_connect
        client.on_disconnect = self._paho_on_disconnect
        client.on_publish = self._paho_on_publish
        self._client = client

    # --- paho's thread -> the asyncio loop --------------------------------------------------
    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        # The loop may be closing while paho's thread still delivers a callback.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(fn, *args)

    def _paho_on_connect(
        self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        self._call(self._connected, reason)

    def _paho_on_disconnect(
        self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        self._call(self._lost, str(reason))

    def _paho_on_publish(
        self, _c: mqtt.Client, _u: Any, mid: int, reason: ReasonCode, _p: Any
    ) -> None:
        self._call(self._on_ack, self, mid, not reason.is_failure)

    def _connected(self, reason: ReasonCode) -> None:
        if not self._connack.done():
            self._connack.set_result(reason)

    def _lost(self, reason: str) -> None:
        self.disconnect_reason = reason
        self.disconnected.set()
        self._on_lost()
        if not self._connack.done():
            self._connack.set_result(reason)

    # --- the asyncio side ------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self._connack.done() and not self.disconnected.is_set()

    async def connect(self, timeout: float = 10.0) -> None:
        """Open the connection and wait for the broker's CONNACK. Raises PublishError."""
        where = f"{self.settings.host}:{self.settings.port}"
        try:
            # connect() resolves and opens the socket synchronously: keep it off the loop.
            settings = self.settings
            await asyncio.to_thread(
                self._client.connect, settings.host, settings.port, settings.keepalive_s
            )
        except (OSError, ValueError) as exc:
            raise PublishError(f"cannot connect to {where}: {exc}") from None
        self._client.loop_start()
        self._started = True
        try:
            async with asyncio.timeout(timeout):
                reason = await asyncio.shield(self._connack)
        except TimeoutError:
            raise PublishError(f"no CONNACK from {where} within {timeout:.0f}s") from None
        if isinstance(reason, str):
            raise PublishError(f"{where} closed the connection before CONNACK: {reason}")
        if reason.is_failure:
            raise PublishError(f"{where} refused the connection: {reason}")

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int:
        """Queue one QoS 1 message; returns its mid (acknowledged through `on_ack`)."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        return info.mid

    async def close(self, timeout: float = 5.0) -> None:
        """Disconnect and stop paho's thread. On a live connection this sends DISCONNECT, so the
        broker discards the last will: publish the death message before calling this."""
        self._client.disconnect()
        if self._started:
            self._started = False
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.to_thread(self._client.loop_stop)
            except TimeoutError:
                log.warning("mqtt: network thread did not stop within %.0fs", timeout)
        if not self._connack.done():
            self._connack.cancel()
