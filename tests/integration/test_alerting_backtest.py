"""Backtests against a real Kafka: normalized batches (with their machine_class headers) on two
partitions read back without a consumer group, merged in a fixed order, through the rules."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from alerting.backtest import BacktestError, backtest, read_kafka
from alerting.config import AlertingConfig
from plantmesh import cli
from plantmesh.connections import KafkaConnection
from plantmesh.contracts import AlertEvent, AssetPath, Reading, ReadingBatch, decode, encode
from plantmesh.kafka.admin import ensure_topics
from plantmesh.topics import HEADER_MACHINE_CLASS, Topics
from tests.support.kafka import kafka_options
from tests.support.threshold import BEARING_RULE

pytestmark = pytest.mark.integration

# Record times near now: records far in the past would be due for deletion by retention.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
PRESS = AssetPath.parse("plant-a/stamping/line1/press-01")
PUMP = AssetPath.parse("plant-a/utilities/line1/pump-01")


def config(namespace: str, bootstrap: str) -> AlertingConfig:
    return AlertingConfig.model_validate(
        {"namespace": namespace, "kafka": {"bootstrap": bootstrap}, "rules": [BEARING_RULE]}
    )


def machine_batches(asset: AssetPath, hot_from: int, hot_to: int) -> list[ReadingBatch]:
    """40 s of bearing_temp, 95 from `hot_from` to `hot_to`, else 80; 5 readings a batch."""
    readings = []
    for t in range(40):
        ts = T0 + timedelta(seconds=t)
        value = 95.0 if hot_from <= t < hot_to else 80.0
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


def sent_at_ms(batch: ReadingBatch) -> int:
    return int(batch.sent_at.timestamp() * 1000)


async def produce(bootstrap: str, namespace: str) -> None:
    """press-01 (class press) on partition 0, pump-01 (class pump) on partition 1, with a bad
    record on each, each record timed at its batch's sent_at (as the writer's, near enough)."""
    topic = Topics(namespace).telemetry_normalized
    await ensure_topics(KafkaConnection(bootstrap=bootstrap), [topic], 2, 1)
    producer = AIOKafkaProducer(**kafka_options(bootstrap), acks="all")
    await producer.start()
    try:
        machines = ((0, PRESS, b"press", (10, 25)), (1, PUMP, b"pump", (18, 33)))
        for partition, asset, cls, hot in machines:
            batches = machine_batches(asset, *hot)
            first = sent_at_ms(batches[0])
            await producer.send_and_wait(
                topic, b"{not json", partition=partition, timestamp_ms=first
            )
            for batch in batches:
                await producer.send_and_wait(
                    topic,
                    encode(batch),
                    partition=partition,
                    timestamp_ms=sent_at_ms(batch),
                    headers=[(HEADER_MACHINE_CLASS, cls)],
                )
    finally:
        await producer.stop()


def timeline(events: list[AlertEvent]) -> list[tuple[str, str, str | None, float]]:
    return [
        (e.kind.value, e.asset.machine, e.machine_class, (e.at - T0).total_seconds())
        for e in events
    ]


async def test_read_kafka_merges_partitions_by_record_time_and_backtests_them(
    kafka_bootstrap: str, namespace: str
) -> None:
    await produce(kafka_bootstrap, namespace)
    cfg = config(namespace, kafka_bootstrap)
    topic = Topics(namespace).telemetry_normalized
    skipped: Counter[str] = Counter()

    async def read(
        since: datetime | None = None, until: datetime | None = None
    ) -> list[tuple[ReadingBatch, str | None]]:
        return [item async for item in read_kafka(cfg, topic, since, until, skipped=skipped)]

    items = await read()
    assert skipped == {"malformed_json": 2}
    # Merged by record time, then partition: press-01 and pump-01 batches alternate.
    assert [(b.gateway_id, b.seq) for b, _ in items] == [
        (gw, seq) for seq in range(8) for gw in ("gw-press-01", "gw-pump-01")
    ]
    assert {(b.gateway_id, cls) for b, cls in items} == {
        ("gw-press-01", "press"),
        ("gw-pump-01", "pump"),
    }
    assert await read() == items  # the same data gives the same order

    assert timeline(backtest(cfg, items)) == [
        ("raised", "press-01", "press", 15.0),
        ("raised", "pump-01", "pump", 23.0),
        ("cleared", "press-01", "press", 25.0),
        ("cleared", "pump-01", "pump", 33.0),
    ]

    # [since, until) by record time: batches sent at t = 14 and 19 (seq 2 and 3).
    window = await read(T0 + timedelta(seconds=10), T0 + timedelta(seconds=20))
    assert [(b.gateway_id, b.seq) for b, _ in window] == [
        (gw, seq) for seq in (2, 3) for gw in ("gw-press-01", "gw-pump-01")
    ]
    assert await read(T0 + timedelta(hours=1)) == []


async def test_read_kafka_names_a_missing_topic(kafka_bootstrap: str, namespace: str) -> None:
    cfg = config(namespace, kafka_bootstrap)
    with pytest.raises(BacktestError, match=f"topic {namespace}.nothing does not exist"):
        [item async for item in read_kafka(cfg, f"{namespace}.nothing")]


def test_cli_backtests_the_namespace_topic(
    kafka_bootstrap: str,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    asyncio.run(produce(kafka_bootstrap, namespace))
    cfg = tmp_path / "alerting.yaml"
    cfg.write_text(
        json.dumps(
            {
                "namespace": namespace,
                "kafka": {"bootstrap": kafka_bootstrap},
                "rules": [BEARING_RULE],
            }
        )
    )
    out = tmp_path / "alerts.jsonl"
    monkeypatch.setattr(cli, "setup_logging", lambda *args: None)

    argv = ["alerting", "backtest", "--config", str(cfg), "--kafka", "--out", str(out)]
    assert cli.main(argv) == 0

    events = [decode(AlertEvent, line) for line in out.read_bytes().splitlines()]
    assert [(kind, machine) for kind, machine, _, _ in timeline(events)] == [
        ("raised", "press-01"),
        ("raised", "pump-01"),
        ("cleared", "press-01"),
        ("cleared", "pump-01"),
    ]
    captured = capsys.readouterr()
    printed = captured.out.splitlines()
    assert printed[0] == (
        f"backtest of {cfg} on {namespace}.telemetry.normalized on {kafka_bootstrap}"
    )
    assert printed[1] == "16 batches, 80 readings, 2 undecodable skipped (malformed_json 2)"
    assert "2 raised, 2 cleared" in printed
    assert "  bearing-overtemp               2        2" in printed
    assert f"alert log: {out} (4 events)" in printed

    # Another namespace's topic, by --namespace: nothing there.
    argv = [*argv[:-2], "--namespace", f"{namespace}x"]
    assert cli.main(argv) == 1
    assert f"topic {namespace}x.telemetry.normalized does not exist" in capsys.readouterr().err
