"""The edge agent in tests: an MQTT subscriber that records what the agent publishes, running an
Agent in-process, agent configs for a real broker, configs whose broker and PLCs are not there
(`offline_*`, for tests without servers), and scraping its metrics endpoint."""

from __future__ import annotations

import asyncio
import re
import threading
import urllib.request
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
from plantmesh.mqtt_auth import apply_connection
from plantmesh.topics import Topics
from tests.support.ports import free_port
from tests.support.waiting import async_wait_for, wait_for


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
    apply_connection(client, settings)
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
    apply_connection(client, settings)
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


# Configs for tests without servers: sources and the broker point at loopback ports nobody
# listens on, so everything retries in the background, which is all such tests need.
OFFLINE_MQTT_PORT = free_port()


def offline_modbus(name: str, poll_s: float = 1.0, machine: str = "m") -> dict[str, Any]:
    """A Modbus source config (one device, one register) whose PLC is not there."""
    return {
        "type": "modbus",
        "name": name,
        "host": "127.0.0.1",
        "port": free_port(),
        "devices": [
            {
                "unit_id": 1,
                "profile": {"name": "p", "registers": [{"signal": "s", "address": 0}]},
                "area": "a",
                "line": "l",
                "machine": machine,
                "poll_interval_s": poll_s,
            }
        ],
    }


def offline_settings(sources: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """Agent settings (as in the YAML file) whose broker is not there; `extra` overrides keys."""
    return {
        "gateway_id": "gw",
        "plant": "p",
        "mqtt": {"url": f"mqtt://127.0.0.1:{OFFLINE_MQTT_PORT}", "reconnect_max_s": 0.5},
        "buffer": {"kind": "memory"},
        "shutdown_timeout_s": 0.5,
        "watch_config_s": 0,
        "sources": sources,
        **extra,
    }


def offline_config(sources: list[dict[str, Any]], **extra: Any) -> AgentConfig:
    return AgentConfig.model_validate(offline_settings(sources, **extra))


def scrape(port: int) -> dict[str, float]:
    """The samples of a Prometheus endpoint on loopback by name (with labels); {} if it is not
    answering."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return {}
    metrics = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+(?:\{[^}]*\})?) (\S+)", line)
        if match and not line.startswith("#"):
            metrics[match.group(1)] = float(match.group(2))
    return metrics
