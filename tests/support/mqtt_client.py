"""A paho MQTT v5 client over TLS that reports what the broker answered: CONNACK, PUBACK reason
codes (a publish the ACL denies fails under v5) and the messages it received."""

from __future__ import annotations

import concurrent.futures
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from plantmesh.stack.paths import HOST
from tests.support.waiting import SCALE

TIMEOUT = 10 * SCALE


class Client:
    """A paho MQTT v5 client over TLS (v5: a denied QoS 1 publish gets a failure PUBACK)."""

    def __init__(
        self, port: int, ca_file: Path, username: str | None = None, password: str | None = None
    ) -> None:
        self.port = port
        self.connack: concurrent.futures.Future[ReasonCode | str] = concurrent.futures.Future()
        self.acks: dict[int, concurrent.futures.Future[ReasonCode]] = {}
        self.subscribed: dict[int, concurrent.futures.Future[None]] = {}
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if username is not None:
            client.username_pw_set(username, password)
        client.tls_set(ca_certs=str(ca_file))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self.client = client

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if not self.connack.done():
            self.connack.set_result(reason)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if not self.connack.done():
            self.connack.set_result(f"closed: {reason}")

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        self._future(self.acks, mid).set_result(reason)

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, _r: Any, _p: Any) -> None:
        self._future(self.subscribed, mid).set_result(None)

    def _future(
        self, futures: dict[int, concurrent.futures.Future[Any]], mid: int
    ) -> concurrent.futures.Future[Any]:
        """The future of message `mid`, whoever comes first: the caller or paho's thread."""
        with self._lock:
            return futures.setdefault(mid, concurrent.futures.Future())

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def connect(self) -> bool:
        """True when the broker accepted the connection."""
        self.client.connect(HOST, self.port, keepalive=30)
        self.client.loop_start()
        reason = self.connack.result(TIMEOUT)
        return isinstance(reason, ReasonCode) and not reason.is_failure

    def publish(self, topic: str, payload: bytes) -> bool:
        """Publish at QoS 1; True when the broker's PUBACK accepts it."""
        info = self.client.publish(topic, payload, qos=1)
        reason: ReasonCode = self._future(self.acks, info.mid).result(TIMEOUT)
        return not reason.is_failure

    def subscribe(self, topic_filter: str) -> None:
        _, mid = self.client.subscribe(topic_filter, qos=1)
        assert mid is not None
        self._future(self.subscribed, mid).result(TIMEOUT)

    def received(self, topic: str) -> list[bytes]:
        with self._lock:
            return [payload for t, payload in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
