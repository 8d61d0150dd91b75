"""The demo runs each Kafka-using child as its service's principal on a secured stack, and
leaves the environment alone on an insecure one."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantmesh.demo.identities import KAFKA_PRINCIPALS, kafka_identities, merge
from plantmesh.kafka.principals import SERVICES
from plantmesh.stack.kafka_security import PASSWORD_FILE_VAR, USERNAME_VAR


def test_each_child_is_its_services_principal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANTMESH_STATE", str(tmp_path))
    monkeypatch.delenv("PLANTMESH_STACK_INSECURE", raising=False)
    identities = kafka_identities()
    assert identities["ingest-writer"][USERNAME_VAR] == "writer"
    assert identities["ingest-bridge"][USERNAME_VAR] == "bridge"
    assert {identities[c][USERNAME_VAR] for c in ("alerting", "incidents", "alarms")} == {
        "alerting"
    }
    assert set(KAFKA_PRINCIPALS.values()) == set(SERVICES)  # nobody runs as admin
    password = Path(identities["ingest-writer"][PASSWORD_FILE_VAR])
    assert password.is_relative_to(tmp_path)
    assert password.name == "writer.password"


def test_an_insecure_stack_gets_no_kafka_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANTMESH_STATE", str(tmp_path))
    monkeypatch.setenv("PLANTMESH_STACK_INSECURE", "1")
    assert kafka_identities() == {}


def test_identities_of_several_kinds_merge_child_by_child() -> None:
    mqtt = {"ingest-bridge": {"A": "1"}, "agent-p": {"B": "2"}}
    kafka = {"ingest-bridge": {"C": "3"}, "ingest-writer": {"D": "4"}}
    assert merge(mqtt, kafka) == {
        "ingest-bridge": {"A": "1", "C": "3"},
        "agent-p": {"B": "2"},
        "ingest-writer": {"D": "4"},
    }
