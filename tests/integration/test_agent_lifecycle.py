from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from plantmesh.connections import MqttConnection
from plantmesh.contracts import GatewayState
from plantmesh.topics import Topics
from tests.support.agent import (
    Recorder,
    agent_config,
    all_topics,
    clear_retained,
    running,
    scrape,
    subscribed,
    until_death,
)
from tests.support.modbus import device, modbus_plc, modbus_source
from tests.support.ports import free_port
from tests.support.waiting import async_wait_for, wait_for

pytestmark = pytest.mark.integration


def nowhere_source() -> dict[str, Any]:
    """A Modbus source whose PLC is not there: the agent must run (and report it) regardless."""
    return modbus_source(free_port(), [device(1, "pump-01")])


async def test_birth_is_retained_health_reports_sources_and_death_ends_it(
    mqtt_url: str, namespace: str
) -> None:
    config = agent_config(mqtt_url, namespace, [nowhere_source()])
    config.health_interval_s = 0.2
    status_topic = Topics(namespace).mqtt_gateway_status("plant-a", "gw-test")
    try:
        async with running(config, keep_status=True) as agent:

            async def connected() -> bool:
                return agent.publisher.connected

            await async_wait_for(connected, 10, "the agent's MQTT connection")
            # A subscriber that comes later still learns the gateway is alive: birth is retained.
            with subscribed(mqtt_url, status_topic) as late:

                async def birth_and_health() -> bool:
                    states = late.states()
                    return GatewayState.BIRTH in states and GatewayState.HEALTH in states

                await async_wait_for(birth_and_health, 10, "retained birth, then health")
                birth, retained = late.statuses()[0]
                assert birth.state == GatewayState.BIRTH
                assert retained
                assert birth.session_id == agent.session_id
                assert birth.agent_version
                health = next(s for s, _ in late.statuses() if s.state == GatewayState.HEALTH)
                assert health.health is not None
                [source] = health.health.sources
                assert source.name == "plc-modbus.pump-01"
                assert not source.connected
                assert source.errors >= 1
                # On the wire too, so the cloud side sees readings lost to a full queue.
                raw = next(
                    json.loads(m.payload)["health"]
                    for m in late.messages
                    if m.payload and json.loads(m.payload)["state"] == "health"
                )
                assert raw["dropped_readings"] == health.health.dropped_readings == 0
                assert not any(r for s, r in late.statuses() if s.state == GatewayState.HEALTH)
        with subscribed(mqtt_url, status_topic) as after:
            await until_death(after)
            death, retained = after.statuses()[0]
            assert retained  # death replaces birth as the retained state
            assert death.session_id == agent.session_id
    finally:
        await asyncio.to_thread(clear_retained, mqtt_url, status_topic)


class CuttableProxy:
    """A TCP relay to the broker that can drop every connection and refuse new ones: a network
    cut between gateway and broker, as the broker sees it too (it fires the last will)."""

    def __init__(self, upstream: MqttConnection) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._handlers: set[asyncio.Task[Any]] = set()

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        self.server = None
        for a, b in self._links:
            a.transport.abort()
            b.transport.abort()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream.host, self.upstream.port
            )
            link = (writer, up_writer)
            self._links.add(link)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            self._links.discard(link)
        finally:
            writer.transport.abort()
            self._handlers.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()


async def test_batches_made_during_a_broker_outage_are_published_after_it(
    mqtt_url: str, namespace: str
) -> None:
    proxy = CuttableProxy(MqttConnection(url=mqtt_url))
    await proxy.open()
    async with modbus_plc() as plc:
        # every poll publishes, so batches keep coming during the outage
        config = agent_config(
            f"{urlsplit(mqtt_url).scheme}://127.0.0.1:{proxy.port}",  # TLS through the relay
            namespace,
            [modbus_source(plc.port, [device(1, "pump-01")])],
        )
        with subscribed(mqtt_url, *all_topics(namespace)) as recorder:
            try:
                async with running(config) as agent:
                    publisher = agent.publisher

                    async def some_acked() -> bool:
                        return publisher.stats.batches_acked >= 3

                    await async_wait_for(some_acked, 10, "3 acknowledged batches")
                    await proxy.cut()

                    async def backlog() -> bool:
                        return not publisher.connected and len(agent.buffer) >= 5

                    await async_wait_for(backlog, 10, "5 batches buffered while cut off")
                    await async_wait_for(
                        _state_count(recorder, GatewayState.DEATH, 1), 10, "the last will"
                    )
                    await proxy.open()

                    async def caught_up() -> bool:
                        return publisher.connected and len(agent.buffer) == 0

                    await async_wait_for(caught_up, 20, "the backlog acknowledged after reconnect")
                    assert publisher.stats.reconnects == 1
                    made = publisher.batcher.next_seq
            finally:
                if proxy.server is not None:
                    await proxy.cut()
            await until_death(recorder, count=2)

    states = recorder.states()
    assert states[:3] == [GatewayState.BIRTH, GatewayState.DEATH, GatewayState.BIRTH]
    assert states[-1] == GatewayState.DEATH
    deaths = [status for status, _ in recorder.statuses() if status.state is GatewayState.DEATH]
    # The broker's last will is an unplanned loss; the agent's own goodbye at stop is planned.
    assert [death.planned for death in deaths] == [False, True]
    seqs = {b.seq for b in recorder.batches()}
    assert seqs >= set(range(made))  # nothing lost: at least once, no gaps
    assert {b.session_id for b in recorder.batches()} == {agent.session_id}


def _state_count(recorder: Recorder, state: GatewayState, n: int) -> Any:
    async def check() -> bool:
        return recorder.states().count(state) >= n

    return check


@contextmanager
def agent_process(config: Path, **env: str) -> Iterator[subprocess.Popen[str]]:
    """`python -m edge_agent run` on `config`; killed on exit if still running."""
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def terminate(process: subprocess.Popen[str]) -> str:
    """SIGTERM, a clean exit (0) expected; its stderr."""
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    return stderr


def test_cli_run_stops_cleanly_on_sigterm(mqtt_url: str, namespace: str, tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"""
gateway_id: gw-cli
plant: plant-a
namespace: {namespace}
mqtt: {{url: "{mqtt_url}"}}
sources:
  - type: modbus
    name: nowhere
    host: 127.0.0.1
    port: {free_port()}
    devices:
      - unit_id: 1
        profile: {{name: p, registers: [{{signal: s, address: 0}}]}}
        area: a
        line: l
        machine: m
"""
    )
    status_topic = Topics(namespace).mqtt_gateway_status("plant-a", "gw-cli")
    with subscribed(mqtt_url, status_topic) as recorder, agent_process(config) as process:
        wait_for(lambda: GatewayState.BIRTH in recorder.states(), 20, "the agent's birth")
        stderr = terminate(process)
        wait_for(lambda: GatewayState.DEATH in recorder.states(), 10, "death after SIGTERM")
        assert "stopped" in stderr
    clear_retained(mqtt_url, status_topic)


def test_cli_reloads_on_sighup_serves_metrics_and_logs_json(
    mqtt_url: str, namespace: str, tmp_path: Path
) -> None:
    metrics_port = free_port()
    config = tmp_path / "agent.yaml"

    known = {name: {**nowhere_source(), "name": name} for name in ("first", "second")}
    for source in known.values():
        source["devices"][0]["profile"] = source["devices"][0]["profile"].model_dump()

    def write(*names: str) -> None:
        sources = [known[name] for name in names]
        settings = {
            "gateway_id": "gw-hup",
            "plant": "plant-a",
            "namespace": namespace,
            "mqtt": {"url": mqtt_url},
            "buffer": {"path": "buffer.sqlite"},
            "metrics": {"listen": f"127.0.0.1:{metrics_port}"},
            "watch_config_s": 0,
            "sources": sources,
        }
        config.write_text(json.dumps(settings))

    write("first")
    with agent_process(config, PLANTMESH_LOG_FORMAT="json") as process:
        source_key = 'plantmesh_agent_source_connected{source="%s.pump-01"}'
        wait_for(lambda: source_key % "first" in scrape(metrics_port), 20, "metrics")
        assert scrape(metrics_port)["plantmesh_agent_config_reloads_total"] == 0
        write("first", "second")
        process.send_signal(signal.SIGHUP)
        wait_for(
            lambda: scrape(metrics_port).get("plantmesh_agent_config_reloads_total") == 1,
            20,
            "the reload counted",
        )
        assert source_key % "second" in scrape(metrics_port)
        stderr = terminate(process)
    messages = [json.loads(line)["msg"] for line in stderr.splitlines() if line.strip()]
    assert "config reload: starting second" in messages, [m for m in messages if "reload" in m]
    assert not (tmp_path / "buffer.sqlite").exists()  # nothing left unsent: file removed
    clear_retained(mqtt_url, Topics(namespace).mqtt_gateway_status("plant-a", "gw-hup"))
