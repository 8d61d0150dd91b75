"""The alerting service against a real Kafka: ReadingBatch JSON in on telemetry.normalized,
alert events out on alerts.events and in the alert log."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from alerting.config import AlertingConfig
from alerting.service import AlertingService
from plantmesh.contracts import AlertEvent, AssetPath, Reading, ReadingBatch, decode, encode
from plantmesh.topics import HEADER_MACHINE_CLASS, Topics
from tests.support.kafka import kafka_options, read_all
from tests.support.threshold import BEARING_RULE
from tests.support.waiting import async_wait_for, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PRESS = AssetPath.parse("plant-a/stamping/line1/press-01")
OTHER = AssetPath.parse("plant-a/stamping/line1/press-02")


def config(namespace: str, bootstrap: str, alert_log: Path) -> AlertingConfig:
    return AlertingConfig.model_validate(
        {
            "namespace": namespace,
            "kafka": {"bootstrap": bootstrap},
            "group_id": f"{namespace}-alerting",
            "alert_log": str(alert_log),
            "kafka_topics": {"partitions": 2, "replication_factor": 1},
            "rules": [BEARING_RULE],
        }
    )


def excursion() -> list[Reading]:
    """press-01: 80 until t=10, 95 from t=10 to t=25, then 80 (raise at 15, clear at 25).
    press-02: always normal."""
    readings = []
    for t in range(40):
        ts = T0 + timedelta(seconds=t)
        for asset, value in ((PRESS, 95.0 if 10 <= t < 25 else 80.0), (OTHER, 70.0)):
            readings.append(
                Reading(
                    asset=asset,
                    signal="bearing_temp",
                    value=value,
                    unit="degC",
                    source_ts=ts,
                    gateway_ts=ts,
                )
            )
    return readings


def batches(readings: list[Reading], size: int) -> list[ReadingBatch]:
    return [
        ReadingBatch(
            gateway_id="gw-1",
            session_id="s1",
            seq=i,
            sent_at=readings[min(i * size + size, len(readings)) - 1].gateway_ts,
            readings=readings[i * size : i * size + size],
        )
        for i in range((len(readings) + size - 1) // size)
    ]


async def test_excursion_gives_one_raised_and_one_cleared_event(
    kafka_bootstrap: str, namespace: str, tmp_path: Path, producer: AIOKafkaProducer
) -> None:
    topics = Topics(namespace)
    alert_log = tmp_path / "alerts.jsonl"
    service = AlertingService(config(namespace, kafka_bootstrap, alert_log))
    task = asyncio.create_task(service.run(), name="test.alerting")
    try:
        await asyncio.wait_for(service.ready.wait(), 30)
        readings = excursion()
        await producer.send_and_wait(topics.telemetry_normalized, b"{not json", key=b"plant-a/x")
        for batch in batches(readings, size=7):
            await producer.send_and_wait(
                topics.telemetry_normalized,
                encode(batch),
                key=b"plant-a/press-01",
                headers=[(HEADER_MACHINE_CLASS, b"press")],  # as the writer adds it
            )

        async def all_consumed() -> bool:
            return service.stats.readings == len(readings)

        await async_wait_for(all_consumed, 60, "the service to consume every reading")
        assert service.stats.undecodable == {"malformed_json": 1}
        assert service.stats.events == {"raised": 1, "cleared": 1}
    finally:
        service.stop()
        await asyncio.wait_for(task, 30)

    # After a clean stop everything consumed has been produced, written and committed.
    lines = alert_log.read_bytes().splitlines()
    logged = [decode(AlertEvent, line) for line in lines]
    assert [(e.kind.value, e.at) for e in logged] == [
        ("raised", T0 + timedelta(seconds=15)),
        ("cleared", T0 + timedelta(seconds=25)),
    ]
    raised, cleared = logged
    assert raised.alert_id == cleared.alert_id
    assert raised.asset == PRESS
    assert (raised.issue_type, raised.machine_class) == ("bearing-overtemperature", "press")
    assert raised.rule_version == cleared.rule_version
    assert raised.evidence.summary == (
        "bearing_temp of plant-a/stamping/line1/press-01 above 90.0 degC for 5.0 s (max 95.0)"
    )
    assert len(raised.evidence.points) == 6  # t = 10 ... 15
    assert raised.evidence.parameters["first_crossing_ts"] == "2026-01-01T00:00:10Z"
    assert "back below 85.0 degC (80.0)" in cleared.evidence.summary

    on_kafka = await read_all(kafka_bootstrap, topics.alert_events)
    assert [value for _, value in on_kafka] == lines  # exactly these two, byte for byte
    assert {key for key, _ in on_kafka} == {b"plant-a/press-01"}

    admin = AIOKafkaAdminClient(**kafka_options(kafka_bootstrap))
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(f"{namespace}-alerting")
    finally:
        await admin.close()
    check = AIOKafkaConsumer(**kafka_options(kafka_bootstrap))
    await check.start()
    try:
        ends = await check.end_offsets(list(committed))
    finally:
        await check.stop()
    assert {tp: meta.offset for tp, meta in committed.items()} == ends
    assert sum(ends.values()) == len(batches(excursion(), 7)) + 1


def test_cli_run_stops_cleanly_on_sigterm(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    cfg = tmp_path / "alerting.yaml"
    cfg.write_text(
        f"namespace: {namespace}\n"
        f"kafka: {{bootstrap: '{kafka_bootstrap}'}}\n"
        f"group_id: {namespace}-alerting\n"
        "rules:\n"
        "  - {name: r, type: threshold, issue_type: process-drift, signal: s, above: 1,\n"
        "     severity: low}\n"
    )
    stderr = tmp_path / "stderr.log"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "alerting", "run", "--config", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        wait_for(lambda: b"1 rule(s)" in stderr.read_bytes(), 60, "the service to start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = stderr.read_text()
    assert f"{namespace}.telemetry.normalized -> {namespace}.alerts.events" in log
    assert "alerting stats" in log  # the final stats line of a clean shutdown
    assert "Traceback" not in log
