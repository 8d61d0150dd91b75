"""`plantmesh alerting explain --kafka` against a real Kafka: normalized batches on two
partitions, the alert log of a backtest (what the service writes) in a file and on the alert
topic, and the alert explained from the topic's readings: reproduced exactly."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from alerting.backtest import backtest, read_kafka
from alerting.config import AlertingConfig
from plantmesh import cli
from plantmesh.connections import KafkaConnection
from plantmesh.contracts import AlertEvent, AssetPath, Reading, ReadingBatch, Severity, encode
from plantmesh.kafka.admin import ensure_topics
from plantmesh.topics import HEADER_MACHINE_CLASS, Topics
from tests.support.kafka import kafka_options
from tests.support.threshold import BEARING_RULE

pytestmark = pytest.mark.integration

# Record times near now: records far in the past would be due for deletion by retention.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
PRESS = AssetPath.parse("plant-a/stamping/line1/press-01")
PUMP = AssetPath.parse("plant-a/utilities/line1/pump-01")


def machine_batches(asset: AssetPath, hot_from: int, hot_to: int) -> list[ReadingBatch]:
    """40 s of bearing_temp, 95 from `hot_from` to `hot_to`, else 80; 5 readings a batch."""
    readings = []
    for t in range(40):
        ts = T0 + timedelta(seconds=t)
        value = 95.0 if hot_from <= t < hot_to else 80.0
        readings.append(
            Reading(asset=asset, signal="bearing_temp", value=value, source_ts=ts, gateway_ts=ts)
        )
    return [
        ReadingBatch(
            gateway_id=f"gw-{asset.machine}",
            session_id="s1",
            seq=i,
            sent_at=readings[i * 5 + 4].gateway_ts,
            readings=readings[i * 5 : i * 5 + 5],
        )
        for i in range(8)
    ]


async def produce(bootstrap: str, namespace: str) -> None:
    """press-01 on partition 0, pump-01 on partition 1, each record timed at its sent_at."""
    topic = Topics(namespace).telemetry_normalized
    await ensure_topics(KafkaConnection(bootstrap=bootstrap), [topic], 2, 1)
    producer = AIOKafkaProducer(**kafka_options(bootstrap), acks="all")
    await producer.start()
    try:
        for partition, asset, cls, hot in (
            (0, PRESS, b"press", (10, 25)),
            (1, PUMP, b"pump", (18, 33)),
        ):
            for batch in machine_batches(asset, *hot):
                await producer.send_and_wait(
                    topic,
                    encode(batch),
                    partition=partition,
                    timestamp_ms=int(batch.sent_at.timestamp() * 1000),
                    headers=[(HEADER_MACHINE_CLASS, cls)],
                )
    finally:
        await producer.stop()


async def alert_log(cfg: AlertingConfig) -> list[AlertEvent]:
    topic = Topics(cfg.namespace).telemetry_normalized
    return backtest(cfg, [item async for item in read_kafka(cfg, topic)])


async def publish_alerts(bootstrap: str, namespace: str, events: list[AlertEvent]) -> None:
    topic = Topics(namespace).alert_events
    await ensure_topics(KafkaConnection(bootstrap=bootstrap), [topic], 1, 1)
    producer = AIOKafkaProducer(**kafka_options(bootstrap), acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(topic, encode(event))
    finally:
        await producer.stop()


def test_explain_from_kafka_reproduces_the_alert_exactly(
    kafka_bootstrap: str,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    asyncio.run(produce(kafka_bootstrap, namespace))
    settings = {
        "namespace": namespace,
        "kafka": {"bootstrap": kafka_bootstrap},
        "rules": [BEARING_RULE],
    }
    cfg = AlertingConfig.model_validate(settings)
    events = asyncio.run(alert_log(cfg))
    press = [e for e in events if e.asset == PRESS]
    assert [e.kind.value for e in press] == ["raised", "cleared"]
    log = tmp_path / "alerts.jsonl"
    log.write_bytes(b"".join(encode(e) + b"\n" for e in events))
    config_file = tmp_path / "alerting.yaml"
    config_file.write_text(json.dumps({**settings, "alert_log": str(log)}))
    monkeypatch.setattr(cli, "setup_logging", lambda *args: None)
    argv = ["alerting", "explain", press[0].alert_id, "--config", str(config_file), "--kafka"]

    # The alert from the log file, the readings from telemetry.normalized.
    assert cli.main([*argv, "--alerts", str(log)]) == 0
    out = capsys.readouterr().out
    assert f"{namespace}.telemetry.normalized on {kafka_bootstrap}" in out
    assert "pending -> raised" in out
    assert "verdict: reproduced exactly (2 events, byte for byte)" in out

    # The alert from the alert topic.
    asyncio.run(publish_alerts(kafka_bootstrap, namespace, events))
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert f"logged in {namespace}.alerts.events on {kafka_bootstrap}:" in out
    assert "verdict: reproduced exactly" in out

    # A tampered log: the first difference is named.
    tampered = press[0].model_copy(update={"severity": Severity.LOW})
    log.write_bytes(encode(tampered) + b"\n" + encode(press[1]) + b"\n")
    assert cli.main([*argv, "--alerts", str(log)]) == 1
    assert "  severity: logged 'low', replayed 'high'" in capsys.readouterr().out
