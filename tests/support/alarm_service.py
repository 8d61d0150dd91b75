"""The alarm service's test furniture: its configuration written for a test's own servers and
receivers, alert events sent to Kafka, transitions read back with their contract header."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from plantmesh.contracts import AlarmTransition, AlertEvent, encode, is_transition
from tests.support.kafka import kafka_options, partitions_of
from tests.support.receivers import HttpReceiver, SmtpReceiver


def write_config(
    tmp_path: Path,
    *,
    namespace: str,
    kafka: str,
    database: str,
    http: HttpReceiver,
    smtp: SmtpReceiver,
    ack_within_s: float = 60,
    extra: dict[str, Any] | None = None,
) -> Path:
    escalation = {
        "version": "test",
        "smtp": {"host": "127.0.0.1", "port": smtp.port},
        "policies": [
            {
                "name": "all",
                "levels": [
                    {"roles": ["operator"], "ack_within_s": ack_within_s},
                    {"roles": ["maintenance"], "ack_within_s": ack_within_s},
                ],
            }
        ],
        "contacts": [
            {
                "plant": "*",
                "role": "operator",
                "name": "ops",
                "channels": [{"type": "webhook", "url": f"{http.url}/ops", "secret": "x"}],
            },
            {
                "plant": "*",
                "role": "maintenance",
                "name": "maint",
                "channels": [
                    {"type": "webhook", "url": f"{http.url}/maint"},
                    {"type": "email", "to": ["maint@example.com"]},
                ],
            },
        ],
    }
    (tmp_path / "escalation.yaml").write_text(yaml.safe_dump(escalation))
    config = {
        "namespace": namespace,
        "kafka": {"bootstrap": kafka},
        "database": {"url": database},
        "escalation": "escalation.yaml",
        "api": {"port": 0},
        "tick_s": 0.2,
        "backoff": {"initial_s": 0.1, "max_s": 1},
        **(extra or {}),
    }
    path = tmp_path / "alarms.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def transitions_on(bootstrap: str, topic: str) -> list[AlarmTransition]:
    """Every AlarmTransition on the topic now (the detection's events skipped by header)."""
    partitions = await partitions_of(bootstrap, topic)
    consumer = AIOKafkaConsumer(**kafka_options(bootstrap), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[AlarmTransition] = []
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found += [
                    AlarmTransition.model_validate_json(r.value or b"")
                    for r in records
                    if is_transition(r.headers)
                ]
        return found
    finally:
        await consumer.stop()


async def send(producer: AIOKafkaProducer, topic: str, event: AlertEvent) -> None:
    key = f"{event.asset.plant}/{event.asset.machine}".encode()
    await producer.send_and_wait(topic, encode(event), key=key)
