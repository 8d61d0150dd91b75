"""The walking skeleton end to end, every hop real: simulated PLC (OPC UA + Modbus TCP) -> edge
agent -> Mosquitto -> ingest bridge -> Kafka -> ingest writer -> InfluxDB, and Kafka -> alerting.

The simulator runs in the test so it can be stepped one tick at a time; every service runs as its
own process from its YAML file, exactly as deployed. Each tick waits until the agent has published
every changed value (observed on MQTT), so nothing depends on timing. At the end InfluxDB must
hold every served value exactly once, and the scripted bearing excursion must have raised exactly
one alert (and cleared it).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml

from plantmesh.children import Children
from plantmesh.connections import MqttConnection
from plantmesh.contracts import ReadingBatch, decode
from plantmesh.influxql import query
from plantmesh.mqtt_auth import apply_connection
from plantmesh.topics import Topics
from simulators import ProductionRecord, Simulation, load_network
from tests.support.waiting import async_wait_for, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROFILES = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "profiles"
PLANT = "plant-e2e"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TICKS = 18  # the excursion covers ticks 5..12; the last ticks let the alert clear


def _network(tmp_path: Path) -> Path:
    network = {
        "seed": 7,
        "tick_s": 1.0,
        "plants": [
            {
                "id": PLANT,
                "opcua": {"port": 0},
                "modbus": {"port": 0},
                "machines": [
                    {"id": "press-01", "area": "stamping", "line": "line1",
                     "class": "hydraulic_press", "protocol": "opcua"},
                    {"id": "pump-01", "area": "utilities", "line": "line1",
                     "class": "centrifugal_pump", "protocol": "modbus", "unit_id": 1,
                     "profile": str(PROFILES / "centrifugal_pump.yaml")},
                ],
            }
        ],
        "events": [
            {"plant": PLANT, "machine": "press-01", "signal": "bearing_temp",
             "kind": "excursion", "start_s": 5, "duration_s": 8, "value": 96.0},
        ],
    }  # fmt: skip
    path = tmp_path / "network.yaml"
    path.write_text(yaml.safe_dump(network))
    return path


class MqttObserver:
    """Collects (series, value) of every reading batch the agent publishes."""

    def __init__(self, url: str, topics: Topics) -> None:
        self.seen: set[tuple[str, float]] = set()
        self._lock = threading.Lock()
        conn = MqttConnection(url=url)
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = self._on_message
        self._subscribed = threading.Event()
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_connect = lambda c, *_: c.subscribe(topics.mqtt_readings_filter, qos=1)
        apply_connection(self._client, conn)
        self._client.connect(conn.host, conn.port)
        self._client.loop_start()
        assert self._subscribed.wait(10), "observer could not subscribe"

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        batch = decode(ReadingBatch, message.payload)
        with self._lock:
            self.seen.update((r.series_key, float(r.value)) for r in batch.readings)  # type: ignore[arg-type]

    def has_all(self, records: list[ProductionRecord]) -> bool:
        with self._lock:
            return all((r.series_key, float(r.value)) in self.seen for r in records)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


@pytest.fixture
def observer(mqtt_url: str, namespace: str) -> Iterator[MqttObserver]:
    obs = MqttObserver(mqtt_url, Topics(namespace))
    yield obs
    obs.close()


def _write_configs(
    tmp_path: Path, sim: Simulation, namespace: str, database: str, urls: dict[str, str]
) -> dict[str, Path]:
    endpoints = sim.endpoints()[PLANT]
    agent = {
        "gateway_id": "gw-e2e",
        "plant": PLANT,
        "namespace": namespace,
        "mqtt": {"url": urls["mqtt"]},
        "publish_interval_s": 0.2,
        "sources": [
            {"type": "opcua", "name": "opc", "endpoint": endpoints.opcua_url,
             "publishing_interval_ms": 100, "browse": [{"root": PLANT}]},
            {"type": "modbus", "name": "mb", "host": "127.0.0.1", "port": endpoints.modbus_port,
             "devices": [{"unit_id": 1, "profile": str(PROFILES / "centrifugal_pump.yaml"),
                          "area": "utilities", "line": "line1", "machine": "pump-01",
                          "poll_interval_s": 0.1, "on_change": True}]},
        ],
    }  # fmt: skip
    ingest = {
        "namespace": namespace,
        "mqtt": {"url": urls["mqtt"], "client_id": f"{namespace}-bridge"},
        "kafka": {"bootstrap": urls["kafka"]},
        "influxdb": {"url": urls["influx"], "bucket": f"{database}/autogen"},
        "writer": {"group_id": f"{namespace}-writer"},
    }
    alerting = {
        "namespace": namespace,
        "kafka": {"bootstrap": urls["kafka"]},
        "group_id": f"{namespace}-alerting",
        "alert_log": str(tmp_path / "alerts.jsonl"),
        "rules": [
            {"name": "bearing-overtemp", "type": "threshold", "signal": "bearing_temp",
             "issue_type": "bearing-overtemperature",
             "above": 90.0, "deadband": 5.0, "on_delay_s": 3.0, "severity": "high"},
        ],
    }  # fmt: skip
    paths = {}
    for name, content in (("agent", agent), ("ingest", ingest), ("alerting", alerting)):
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(content))
    return paths


def _influx_points(influx_url: str, database: str) -> dict[str, list[tuple[int, float]]]:
    series = query(
        influx_url,
        database,
        "SELECT value FROM readings GROUP BY plant, area, line, machine, signal",
    )
    points: dict[str, list[tuple[int, float]]] = {}
    for s in series:
        key = "/".join(s.tags[t] for t in ("plant", "area", "line", "machine", "signal"))
        points[key] = [(int(ts), float(v)) for ts, v in s.values]
    return points


def _alert_events(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_simulated_plant_to_influxdb_exactly_once_with_one_alert(
    tmp_path: Path,
    namespace: str,
    mqtt_url: str,
    kafka_bootstrap: str,
    influx_url: str,
    influx_database: str,
    observer: MqttObserver,
) -> None:
    sim = Simulation(load_network(_network(tmp_path)))
    urls = {"mqtt": mqtt_url, "kafka": kafka_bootstrap, "influx": influx_url}
    async with sim.serving():
        configs = _write_configs(tmp_path, sim, namespace, influx_database, urls)
        with Children(log_dir=tmp_path / "logs") as services:
            services.start_module("writer", "ingest", "writer", "--config", str(configs["ingest"]))
            services.start_module(
                "alerting", "alerting", "run", "--config", str(configs["alerting"])
            )
            services.start_module("bridge", "ingest", "bridge", "--config", str(configs["ingest"]))
            services.start_module("agent", "edge_agent", "run", "--config", str(configs["agent"]))

            def logs() -> str:
                return "\n".join(f"--- {c.name}\n{c.log_tail(15)}" for c in services.started)

            async def agent_published(records: list[ProductionRecord]) -> bool:
                assert not services.dead(), f"a service died:\n{logs()}"
                return observer.has_all(records)

            await async_wait_for(
                lambda: agent_published(sim.records), 60, "the agent's first values on MQTT"
            )
            for _ in range(TICKS):
                tick_records = await sim.step()
                await async_wait_for(
                    lambda r=tick_records: agent_published(r),  # type: ignore[misc]
                    20,
                    f"tick {sim.tick} on MQTT",
                )

            expected: dict[str, list[ProductionRecord]] = {}
            for record in sim.records:
                expected.setdefault(record.series_key, []).append(record)
            total = sum(len(v) for v in expected.values())
            wait_for(
                lambda: (
                    sum(map(len, _influx_points(influx_url, influx_database).values())) >= total
                ),
                60,
                f"{total} points in InfluxDB",
            )
            alert_log = tmp_path / "alerts.jsonl"
            wait_for(
                lambda: any(e["kind"] == "cleared" for e in _alert_events(alert_log)),
                30,
                "the alert to clear",
            )
            codes = services.stop()
        assert all(code == 0 for code in codes.values()), f"unclean exits {codes}:\n{logs()}"

    stored = _influx_points(influx_url, influx_database)
    assert set(stored) == set(expected), "series in InfluxDB differ from the simulator's"
    for key, records in expected.items():
        points = stored[key]
        values = sorted(float(r.value) for r in records)
        assert sorted(v for _, v in points) == values, f"{key}: values differ"
        if records[0].protocol == "opcua":  # OPC UA carries the PLC's source timestamp
            assert sorted(ts for ts, _ in points) == sorted(
                (r.source_ts - EPOCH) // timedelta(microseconds=1) * 1000 for r in records
            ), f"{key}: timestamps differ"

    events = _alert_events(tmp_path / "alerts.jsonl")
    raised = [e for e in events if e["kind"] == "raised"]
    assert len(raised) == 1, events
    assert raised[0]["asset"]["machine"] == "press-01"  # type: ignore[index]
    assert raised[0]["signal"] == "bearing_temp"
    evidence = raised[0]["evidence"]
    assert isinstance(evidence, dict)
    assert evidence["points"], "the alert carries the readings that raised it"
    assert all(p["value"] > 90.0 for p in evidence["points"])
    assert [e["kind"] for e in events] == ["raised", "cleared"]
