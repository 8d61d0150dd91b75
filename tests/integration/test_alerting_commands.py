"""Baseline commands against a real Kafka: `plantmesh alerting baseline relearn` reaches the
running service, which forgets the learned baseline of that series only."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from alerting.cli import register
from alerting.config import load_alerting_config
from alerting.rules.spc import SpcRule
from alerting.service import AlertingService
from plantmesh import cli
from plantmesh.contracts import AssetPath, Reading, ReadingBatch, encode
from plantmesh.topics import Topics, gateway_key
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PUMPS = [AssetPath.parse(f"plant-a/area/line/pump-0{i}") for i in (1, 2)]


def spc_rules(service: AlertingService) -> list[SpcRule]:
    return [
        rule
        for shard in service.shards.by_partition.values()
        for rule in shard.engine.rules
        if isinstance(rule, SpcRule)
    ]


def baseline_of(service: AlertingService, series: str) -> object:
    return next((b for r in spc_rules(service) if (b := r.baseline(series)) is not None), None)


async def test_relearn_reaches_the_running_service(
    kafka_bootstrap: str,
    namespace: str,
    tmp_path: Path,
    producer: AIOKafkaProducer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "alerting.yaml"
    path.write_text(
        json.dumps(
            {
                "namespace": namespace,
                "kafka": {"bootstrap": kafka_bootstrap},
                "group_id": f"{namespace}-alerting",
                "alert_log": "alerts.jsonl",
                "kafka_topics": {"partitions": 2, "replication_factor": 1},
                "rules": [
                    {
                        "name": "pressure-shift",
                        "type": "spc",
                        "issue_type": "process-drift",
                        "signal": "pressure",
                        "learn_s": 10,
                        "min_points": 10,
                    }
                ],
            }
        )
    )
    config = load_alerting_config(path)
    service = AlertingService(config)
    task = asyncio.create_task(service.run(), name="test.alerting")
    rng = random.Random(1)
    try:
        await asyncio.wait_for(service.commands_ready.wait(), 60)
        for t in range(30):
            ts = T0 + timedelta(seconds=t)
            readings = [
                Reading(
                    asset=pump,
                    signal="pressure",
                    value=5.0 + rng.gauss(0, 0.1),
                    source_ts=ts,
                    gateway_ts=ts,
                )
                for pump in PUMPS
            ]
            batch = ReadingBatch(
                gateway_id="gw-1", session_id="s", seq=t, sent_at=ts, readings=readings
            )
            await producer.send_and_wait(
                Topics(namespace).telemetry_normalized,
                encode(batch),
                key=gateway_key("plant-a", "gw-1"),
            )

        async def learned() -> bool:
            return service.stats.readings == 60 and all(
                baseline_of(service, f"{pump.key}/pressure") is not None for pump in PUMPS
            )

        await async_wait_for(learned, 60, "both baselines learned")

        monkeypatch.setattr(cli, "setup_logging", lambda *args: None)
        argv = [
            "alerting", "baseline", "relearn", "--config", str(path),
            "--rule", "pressure-shift", "--series", f"{PUMPS[0].key}/pressure", "--by", "test",
        ]  # fmt: skip
        parser = cli.build_parser([("alerting", register)])
        assert await asyncio.to_thread(cli.dispatch, parser, argv) == 0

        async def relearning() -> bool:
            return service.stats.commands == 1

        await async_wait_for(relearning, 60, "the command to arrive")
        assert baseline_of(service, f"{PUMPS[0].key}/pressure") is None
        assert baseline_of(service, f"{PUMPS[1].key}/pressure") is not None
    finally:
        service.stop()
        await asyncio.wait_for(task, 30)


def test_a_command_for_a_rule_that_is_not_spc_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "alerting.yaml"
    path.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "name": "hot",
                        "type": "threshold",
                        "issue_type": "bearing-overtemperature",
                        "signal": "t",
                        "above": 1,
                    }
                ]
            }
        )
    )
    monkeypatch.setattr(cli, "setup_logging", lambda *args: None)
    parser = cli.build_parser([("alerting", register)])
    argv = ["alerting", "baseline", "freeze", "--config", str(path), "--rule", "hot",
            "--series", "p/a/l/m/t"]  # fmt: skip
    assert cli.dispatch(parser, argv) == 2
    assert "no spc rule 'hot'" in capsys.readouterr().err
