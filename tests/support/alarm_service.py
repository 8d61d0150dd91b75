"""The alarm service's test furniture: its configuration written for a test's own servers and
receivers, alert events sent to Kafka, transitions read back with their contract header."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaProducer

from plantmesh.contracts import AlarmTransition, AlertEvent, encode, is_transition
from tests.support.kafka import records_on
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
    return [
        AlarmTransition.model_validate_json(r.value or b"")
        for r in await records_on(bootstrap, topic)
        if is_transition(r.headers)
    ]


async def send(producer: AIOKafkaProducer, topic: str, event: AlertEvent) -> None:
    key = f"{event.asset.plant}/{event.asset.machine}".encode()
    await producer.send_and_wait(topic, encode(event), key=key)
