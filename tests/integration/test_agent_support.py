"""Helpers for the edge agent's integration tests (no tests here): an MQTT subscriber that records
what the agent publishes, free ports, and running an Agent in-process."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from plantmesh.connections import MqttConnection
from plantmesh.contracts import GatewayState, GatewayStatus, ReadingBatch, decode
from plantmesh.topics import Topics
from tests.waiting import async_wait_for, wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


class Recorder:
    """Everything published on the subscribed filters, in arrival order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[Message] = []

    def add(self, message: Message) -> None:
        with self._lock:
            self._messages.append(message)

    @property
    def messages(self) -> list[Message]:
        with self._lock:
            return list(self._messages)

    def batches(self) -> list[ReadingBatch]:
        return [
            decode(ReadingBatch, m.payload) for m in self.messages if m.topic.endswith("/readings")
        ]

    def statuses(self) -> list[tuple[GatewayStatus, bool]]:
        return [
            (decode(GatewayStatus, m.payload), m.retain)
            for m in self.messages
            if m.topic.endswith("/status") and m.payload
        ]

    def states(self) -> list[GatewayState]:
        return [status.state for status, _ in self.statuses()]


@contextmanager
def subscribed(mqtt_url: str, *filters: str) -> Iterator[Recorder]:
    """A paho subscriber on `filters`, ready (SUBACK received) when the block starts."""
    settings = MqttConnection(url=mqtt_url)
    recorder = Recorder()
    ready = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"test-{uuid.uuid4().hex[:8]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
        c.subscribe([(f, 1) for f in filters])

    def on_subscribe(_c: mqtt.Client, _u: Any, _mid: int, _rc: Any, _p: Any) -> None:
        ready.set()

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        recorder.add(Message(msg.topic, bytes(msg.payload), bool(msg.retain)))

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(settings.host, settings.port)
    client.loop_start()
    try:
        wait_for(ready.is_set, 10, "the test subscriber's SUBACK")
        yield recorder
    finally:
        client.disconnect()
        client.loop_stop()


def clear_retained(mqtt_url: str, topic: str) -> None:
    """Remove a retained message so shared brokers do not accumulate test leftovers."""
    settings = MqttConnection(url=mqtt_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.connect(settings.host, settings.port)
    client.loop_start()
    try:
        client.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


@asynccontextmanager
async def running(config: AgentConfig, keep_status: bool = False) -> AsyncIterator[Agent]:
    """An Agent running in this event loop; stopped cleanly (and awaited) on exit. Its retained
    status is removed afterwards unless `keep_status`, so the shared broker keeps no leftovers."""
    agent = Agent(config)
    task = asyncio.create_task(agent.run(), name="test-agent")
    try:
        await asyncio.wait_for(agent.started.wait(), 10)
        yield agent
    finally:
        agent.stop()
        await asyncio.wait_for(task, 30)
        if not keep_status:
            await asyncio.to_thread(clear_retained, config.mqtt.url, agent.publisher.status_topic)


def all_topics(namespace: str) -> tuple[str, str]:
    topics = Topics(namespace)
    return topics.mqtt_readings_filter, topics.mqtt_status_filter


async def until_death(recorder: Recorder, timeout: float = 10, count: int = 1) -> None:
    """Wait for the (count-th) death status: whatever the agent published before it has arrived
    too."""

    async def dead() -> bool:
        return recorder.states().count(GatewayState.DEATH) >= count

    await async_wait_for(dead, timeout, "the gateway's death status")


def agent_config(mqtt_url: str, namespace: str, sources: list[dict[str, Any]]) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "gateway_id": "gw-test",
            "plant": "plant-a",
            "namespace": namespace,
            "mqtt": {"url": mqtt_url, "client_id": f"agent-{namespace}"},
            "publish_interval_s": 0.1,
            "health_interval_s": 60,
            "shutdown_timeout_s": 5,
            "sources": sources,
        }
    )
