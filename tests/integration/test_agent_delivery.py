"""Store-and-forward against a real Mosquitto that the tests stop and start: a private instance
on free ports (the shared dev broker stays up), a Modbus PLC in this process, and a subscriber
with a persistent session, so what the agent republishes while the subscriber is still
reconnecting is queued for it by the broker.

- A long broker outage while the agent polls: every batch arrives afterwards, in order, once.
- kill -9 of the agent process with a full disk buffer while the broker is down, a restart, then
  the broker back: every batch of both sessions arrives, with the values the buffer held.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.mqtt_link import MAX_INFLIGHT
from plantmesh.connections import MqttConnection
from plantmesh.contracts import ReadingBatch, decode
from plantmesh.modbus_profile import encode_value
from plantmesh.mqtt_auth import apply_connection
from plantmesh.stack import manager
from plantmesh.stack.mosquitto import Mosquitto
from plantmesh.stack.paths import Ports, StackConfig
from plantmesh.topics import Topics
from tests.support.agent import scrape
from tests.support.modbus import HOLDING, LEVEL, PUMP, device, modbus_plc
from tests.support.modbus import modbus_source as plc_source
from tests.support.ports import free_port
from tests.support.waiting import async_wait_for, wait_for

pytestmark = pytest.mark.integration

OUTAGE_S = float(os.environ.get("PLANTMESH_TEST_OUTAGE_S", "60"))


# --- a broker of our own --------------------------------------------------------------------
class PrivateBroker:
    def __init__(self, state: Path) -> None:
        port = free_port()
        self.config = StackConfig(
            cache=StackConfig.from_env().cache,
            state=state,
            ports=Ports(mqtt=port, kafka=free_port(), influx=free_port(), mqtts=free_port()),
        )
        # A secured broker of its own: TLS, its own CA and operator, as the stack's.
        self.broker = Mosquitto(self.config)
        self.url = self.broker.address
        self.port = self.config.ports.mqtt_tls

    def mqtt(self, **settings: Any) -> dict[str, Any]:
        """An `mqtt:` section for this broker, as its operator."""
        return {**self.broker.connection(), **settings}

    def up(self) -> None:
        manager.up(self.config, only=["mosquitto"], report=lambda _: None)

    def down(self) -> None:
        manager.down(self.config, only=["mosquitto"], report=lambda _: None)


@contextmanager
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(tmp_path / "stack")
    broker.up()
    try:
        yield broker
    finally:
        broker.down()


class SessionRecorder:
    """A subscriber whose session outlives broker restarts (clean_start false, session expiry),
    recording every batch in arrival order."""

    def __init__(self, broker: PrivateBroker, topic_filter: str) -> None:
        self.batches: list[ReadingBatch] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._filter = topic_filter
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"rec-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.reconnect_delay_set(1, 1)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_: self._subscribed.set()
        client.on_message = self._on_message
        apply_connection(client, MqttConnection.model_validate(broker.mqtt()))
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 3600
        client.connect("127.0.0.1", broker.port, clean_start=False, properties=properties)
        self.client = client

    def _on_connect(self, c: mqtt.Client, _u: Any, flags: Any, _rc: Any, _p: Any) -> None:
        if not flags.session_present:
            c.subscribe(self._filter, qos=1)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        batch = decode(ReadingBatch, bytes(msg.payload))
        with self._lock:
            self.batches.append(batch)

    def received(self) -> list[ReadingBatch]:
        with self._lock:
            return list(self.batches)

    def keys(self, session: str) -> list[int]:
        return [b.seq for b in self.received() if b.session_id == session]

    def __enter__(self) -> SessionRecorder:
        self.client.loop_start()
        wait_for(self._subscribed.is_set, 10, "the recorder's SUBACK")
        return self

    def __exit__(self, *_: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def in_order_once(seqs: list[int]) -> tuple[list[int], list[int]]:
    """(first arrivals, repeats): QoS 1 may repeat what was in flight when the link broke."""
    seen: set[int] = set()
    first: list[int] = []
    repeats: list[int] = []
    for seq in seqs:
        (repeats if seq in seen else first).append(seq)
        seen.add(seq)
    return first, repeats


# --- the long outage ----------------------------------------------------------------------
def outage_config(broker: PrivateBroker, plc_port: int, tmp_path: Path) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "gateway_id": "gw-outage",
            "plant": "plant-a",
            "namespace": f"t{uuid.uuid4().hex[:8]}",
            "mqtt": broker.mqtt(reconnect_max_s=2),
            "publish_interval_s": 0.1,
            "health_interval_s": 60,
            "buffer": {"path": str(tmp_path / "buffer.sqlite")},
            "sources": [plc_source(plc_port, [device(1, "pump-01", poll_interval_s=0.1)])],
        }
    )


@asynccontextmanager
async def counting_plc() -> AsyncIterator[int]:
    """A PLC whose level register counts up, so every batch carries distinct values."""
    async with modbus_plc() as plc:

        async def count() -> None:
            value = 0.0
            while True:
                value += 1
                await plc.set(1, HOLDING, LEVEL.address, encode_value(LEVEL, value))
                await asyncio.sleep(0.05)  # a changing process value, not synchronisation

        task = asyncio.create_task(count(), name="plc-counter")
        try:
            yield plc.port
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@pytest.mark.slow
@pytest.mark.timeout(OUTAGE_S * 3 + 120)
async def test_a_long_broker_outage_loses_nothing_and_keeps_order(tmp_path: Path) -> None:
    with private_broker(tmp_path) as broker:
        async with counting_plc() as plc_port:
            config = outage_config(broker, plc_port, tmp_path)
            topic_filter = Topics(config.namespace).mqtt_readings_filter
            with SessionRecorder(broker, topic_filter) as recorder:
                agent = Agent(config)
                task = asyncio.create_task(agent.run(), name="outage-agent")
                cut_at = -1
                try:
                    cut_at = await _outage(agent, broker, recorder)
                finally:
                    agent.stop()
                    await asyncio.wait_for(task, 60)
                made = agent.publisher.batcher.next_seq

                async def all_arrived() -> bool:
                    return set(recorder.keys(agent.session_id)) >= set(range(made))

                await async_wait_for(all_arrived, 30, "the last batches at the recorder")
                first, repeats = in_order_once(recorder.keys(agent.session_id))
                assert first == list(range(made)), "every batch, in order"
                # Only batches that could have been in flight when the broker went away may
                # come twice (QoS 1); everything made during the outage comes exactly once.
                assert all(seq < cut_at for seq in repeats)
                assert len(repeats) <= MAX_INFLIGHT
                assert agent.publisher.dropped_batches == 0


async def _outage(agent: Agent, broker: PrivateBroker, recorder: SessionRecorder) -> int:
    """Stop the broker for OUTAGE_S while batches keep coming; the first seq made without it."""
    publisher = agent.publisher

    async def flowing() -> bool:
        return publisher.stats.batches_acked >= 5 and len(recorder.received()) >= 5

    await async_wait_for(flowing, 20, "batches flowing before the outage")
    await asyncio.to_thread(broker.down)
    cut_at = publisher.batcher.next_seq

    async def long_enough() -> bool:
        age = agent.buffer.oldest_age_s()
        return not publisher.connected and age is not None and age >= OUTAGE_S

    await async_wait_for(long_enough, OUTAGE_S + 30, f"{OUTAGE_S:.0f}s of buffered batches")
    during = publisher.batcher.next_seq - cut_at
    assert during >= OUTAGE_S * 5  # ~10 batches/s kept coming while the broker was away
    assert len(agent.buffer) >= during
    await asyncio.to_thread(broker.up)

    async def drained() -> bool:
        return publisher.connected and len(agent.buffer) == 0 and len(recorder.received()) > 0

    await async_wait_for(drained, 60, "the backlog delivered after the broker returned")
    assert publisher.stats.reconnects >= 1
    return cut_at


# --- kill -9 with a full buffer -------------------------------------------------------------
def write_config(path: Path, broker: PrivateBroker, plc_port: int, metrics_port: int) -> None:
    source = plc_source(plc_port, [device(1, "pump-01", poll_interval_s=0.1)])
    source["devices"][0]["profile"] = PUMP.model_dump(mode="json")
    config = {
        "gateway_id": "gw-kill",
        "plant": "plant-a",
        "namespace": f"k{uuid.uuid4().hex[:8]}",
        "mqtt": broker.mqtt(reconnect_max_s=1),
        "publish_interval_s": 0.1,
        "buffer": {"path": "buffer.sqlite"},
        "metrics": {"listen": f"127.0.0.1:{metrics_port}"},
        "watch_config_s": 0,
        "sources": [source],
    }
    path.write_text(json.dumps(config))  # YAML is a superset of JSON


def start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def buffered(port: int) -> float:
    return scrape(port).get("plantmesh_agent_buffer_batches", -1)


def buffer_contents(path: Path, tmp: Path) -> dict[tuple[str, int], bytes]:
    """What a killed agent left on disk, read from a copy (as a power cut leaves the files)."""
    copy = tmp / "snapshot"
    copy.mkdir()
    for suffix in ("", "-wal"):
        if Path(f"{path}{suffix}").exists():
            shutil.copy(f"{path}{suffix}", copy / f"b.sqlite{suffix}")
    with sqlite3.connect(copy / "b.sqlite") as db:
        rows = db.execute("SELECT session_id, seq, payload FROM batch ORDER BY id").fetchall()
    return {(session, seq): bytes(payload) for session, seq, payload in rows}


@pytest.mark.slow
async def test_kill_9_with_a_full_buffer_then_restart_loses_nothing(tmp_path: Path) -> None:
    config_path = tmp_path / "agent.yaml"
    metrics_port = free_port()
    log = tmp_path / "agent.log"
    with private_broker(tmp_path) as broker:
        async with counting_plc() as plc_port:
            write_config(config_path, broker, plc_port, metrics_port)
            namespace = json.loads(config_path.read_text())["namespace"]
            topic_filter = Topics(namespace).mqtt_readings_filter
            with SessionRecorder(broker, topic_filter) as recorder:
                first = start_agent(config_path, log)
                second: subprocess.Popen[bytes] | None = None
                try:
                    await async_wait_for(
                        _async(lambda: len(recorder.received()) >= 5), 30, "the first batches"
                    )
                    await asyncio.to_thread(broker.down)
                    await async_wait_for(
                        _async(lambda: buffered(metrics_port) >= 30), 30, "30 buffered batches"
                    )
                    first.send_signal(signal.SIGKILL)
                    first.wait(10)
                    on_disk = buffer_contents(tmp_path / "buffer.sqlite", tmp_path)
                    old_sessions = {session for session, _ in on_disk}
                    assert len(on_disk) >= 30
                    assert len(old_sessions) == 1

                    second = start_agent(config_path, log)
                    await async_wait_for(
                        _async(lambda: buffered(metrics_port) >= len(on_disk) + 10),
                        30,
                        "the restarted agent buffering on top of what the first left",
                    )
                    await asyncio.to_thread(broker.up)
                    [old] = old_sessions

                    def new_keys() -> list[int]:
                        return [
                            b.seq for b in recorder.received() if b.session_id not in old_sessions
                        ]

                    def caught_up() -> bool:
                        old_seqs = set(recorder.keys(old))
                        return {seq for _, seq in on_disk} <= old_seqs and len(new_keys()) >= 10

                    await async_wait_for(_async(caught_up), 60, "both sessions delivered")
                    second.send_signal(signal.SIGTERM)
                    assert await asyncio.to_thread(second.wait, 30) == 0
                finally:
                    for process in (first, second):
                        if process is not None and process.poll() is None:
                            process.kill()
                            process.wait()
                received = recorder.received()

    # The old session: everything before the outage plus everything the buffer held, no gaps,
    # the held batches byte for byte (values included).
    old_batches = {b.seq: b for b in received if b.session_id == old}
    assert sorted(old_batches) == list(range(max(old_batches) + 1)), log.read_text()[-3000:]
    for (_, seq), payload in on_disk.items():
        assert old_batches[seq] == decode(ReadingBatch, payload)
    # The new session starts at 0 and has no gaps either; its seqs are its own.
    sessions = {b.session_id for b in received} - {old}
    assert len(sessions) == 1
    first_new, _ = in_order_once([b.seq for b in received if b.session_id in sessions])
    assert first_new == list(range(len(first_new)))
    # Old before new: the backlog drains before the batches made after the restart.
    arrivals = list(dict.fromkeys((b.session_id, b.seq) for b in received))
    last_old = max(i for i, (session, _) in enumerate(arrivals) if session == old)
    first_new_at = min(i for i, (session, _) in enumerate(arrivals) if session != old)
    assert last_old < first_new_at
    values = [r.value for b in old_batches.values() for r in b.readings if r.signal == "level"]
    assert len(set(values)) > 1  # the PLC's counter moved: real, distinct values went through


def _async(predicate: Any) -> Any:
    async def check() -> bool:
        return bool(predicate())

    return check
