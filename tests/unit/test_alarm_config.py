"""The alarm service's sample configuration files load, and bad ones say what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting.alarm_service.config import load_alarm_config
from alerting.lifecycle.policies import load_escalation
from plantmesh.config import ConfigError
from plantmesh.contracts import Severity

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "alerting"


def test_the_samples_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANTMESH_DATABASE_URL", "sqlite:////tmp/alarms.db")
    config = load_alarm_config(DEPLOY / "alarms.yaml")
    assert config.escalation == DEPLOY / "escalation.yaml"
    assert config.sinks == ["kafka", "influx", "andon"]
    assert config.scorecards.position_of("plant-a", "line1") == "milling-console"
    assert config.scorecards.position_of("plant-a", "line7") == "assembly-console"
    assert config.scorecards.positions_of("plant-b") == ["plant-b"]
    assert config.registry is not None
    assert config.registry.exists()
    escalation = load_escalation(config.escalation)
    policy = escalation.policy_for("vibration-instability", Severity.HIGH)
    assert policy is not None
    assert policy.name == "machine-instability"
    fallback = escalation.policy_for("vibration-instability", Severity.LOW)
    assert fallback is not None
    assert fallback.name == "default"
    own = escalation.contacts_for("plant-a", ["operator"])
    assert [c.name for c in own] == ["plant-a-operators"]
    assert [c.name for c in escalation.contacts_for("plant-b", ["operator"])] == ["shift-leads"]


def test_a_level_nobody_holds_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "escalation.yaml"
    path.write_text(
        "version: '1'\n"
        "policies:\n"
        "  - name: p\n"
        "    levels: [{roles: [operator], ack_within_s: 60}]\n"
        "contacts: []\n"
    )
    with pytest.raises(ConfigError, match="no contact holds role 'operator'"):
        load_escalation(path)


def test_a_database_url_must_be_one_we_drive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLANTMESH_DATABASE_URL", raising=False)
    path = tmp_path / "alarms.yaml"
    path.write_text("database: {url: 'mysql://x@y/z'}\n")
    with pytest.raises(ConfigError, match=r"database\.url"):
        load_alarm_config(path)
    path.write_text("{}\n")
    with pytest.raises(ConfigError, match="PLANTMESH_DATABASE_URL"):
        load_alarm_config(path)
