from __future__ import annotations

import typing
from pathlib import Path

import pytest

from alerting.catalogue import DEFAULT_CATALOGUE, load_catalogue
from alerting.config import AlertingConfig, load_alerting_config
from alerting.engine import Engine
from alerting.rules import RULE_TYPES, RuleConfig, ThresholdRule
from plantmesh.config import ConfigError
from plantmesh.contracts import Severity

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "alerting" / "sample.yaml"

RULE = """\
  - name: bearing-overtemp
    type: threshold
    issue_type: bearing-overtemperature
    signal: bearing_temp
    above: 90.0
    deadband: 5.0
    on_delay_s: 5.0
    severity: high
"""


def write(tmp_path: Path, rules: str = RULE, head: str = "") -> Path:
    path = tmp_path / "alerting.yaml"
    path.write_text(f"{head}rules:\n{rules}")
    return path


def problems_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_alerting_config(path)
    message = str(info.value)
    assert str(path) in message  # every error names the file
    return message


def test_sample_loads_and_builds_an_engine() -> None:
    config = load_alerting_config(SAMPLE)
    assert [r.name for r in config.rules] == ["bearing-overtemp", "hydraulic-pressure-low"]
    assert config.group_id == "plantmesh-alerting"
    assert config.alert_log == SAMPLE.parent / "alerts.jsonl"
    assert config.catalogue == DEFAULT_CATALOGUE
    engine = Engine.from_config(config.rules, load_catalogue(config.catalogue))
    assert [type(r) for r in engine.rules] == [ThresholdRule, ThresholdRule]


def test_minimal_file_uses_defaults_and_resolves_the_alert_log(tmp_path: Path) -> None:
    config = load_alerting_config(write(tmp_path, head="alert_log: logs/alerts.jsonl\n"))
    assert config.namespace == ""
    assert config.group_id == "plantmesh-alerting"
    assert config.alert_log == tmp_path / "logs" / "alerts.jsonl"
    [rule] = config.rules
    assert (rule.above, rule.below, rule.deadband, rule.on_delay_s) == (90.0, None, 5.0, 5.0)
    assert rule.plants == rule.machines == []


def test_absolute_alert_log_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "a.jsonl"
    config = load_alerting_config(write(tmp_path, head=f"alert_log: {target}\n"))
    assert config.alert_log == target


def test_both_above_and_below(tmp_path: Path) -> None:
    message = problems_of(write(tmp_path, RULE + "    below: 10.0\n"))
    assert "rules[0]" in message
    assert "exactly one of 'above' or 'below' (both are set)" in message


def test_neither_above_nor_below(tmp_path: Path) -> None:
    message = problems_of(write(tmp_path, RULE.replace("    above: 90.0\n", "")))
    assert "rules[0]" in message
    assert "(neither is set)" in message


def test_negative_deadband(tmp_path: Path) -> None:
    message = problems_of(write(tmp_path, RULE.replace("deadband: 5.0", "deadband: -1")))
    assert "rules[0].deadband: Input should be greater than or equal to 0" in message


def test_negative_on_delay(tmp_path: Path) -> None:
    message = problems_of(write(tmp_path, RULE.replace("on_delay_s: 5.0", "on_delay_s: -5")))
    assert "rules[0].on_delay_s" in message


def test_unknown_rule_type(tmp_path: Path) -> None:
    message = problems_of(write(tmp_path, RULE.replace("type: threshold", "type: crystal_ball")))
    assert "rules[0]" in message
    assert "'crystal_ball'" in message
    assert "'threshold'" in message  # says what would have been accepted


def test_missing_signal_and_issue_type(tmp_path: Path) -> None:
    text = RULE.replace("    signal: bearing_temp\n", "").replace(
        "    issue_type: bearing-overtemperature\n", ""
    )
    message = problems_of(write(tmp_path, text))
    assert "rules[0].signal: required key is missing" in message
    assert "rules[0].issue_type: required key is missing" in message


def test_an_issue_type_outside_the_catalogue_is_named(tmp_path: Path) -> None:
    text = RULE.replace("issue_type: bearing-overtemperature", "issue_type: hot-bearing")
    message = problems_of(write(tmp_path, text))
    assert "rules[0].issue_type: 'hot-bearing' is not in the catalogue" in message
    assert "bearing-overtemperature" in message  # lists what it could have been


def test_severity_defaults_to_the_issue_types_priority(tmp_path: Path) -> None:
    config = load_alerting_config(write(tmp_path, RULE.replace("    severity: high\n", "")))
    assert config.rules[0].severity is None
    engine = Engine.from_config(config.rules, load_catalogue(config.catalogue))
    (rule,) = engine.rules
    assert isinstance(rule, ThresholdRule)
    assert rule.identity.severity is Severity.HIGH  # bearing-overtemperature's priority
    assert rule.identity.issue_type == "bearing-overtemperature"
    assert len(rule.identity.version) == 12


def test_unknown_key_is_reported(tmp_path: Path) -> None:
    message = problems_of(write(tmp_path, RULE + "    treshold: 3\n"))
    assert "rules[0].treshold: unknown key" in message


def test_invalid_severity_and_names(tmp_path: Path) -> None:
    text = RULE.replace("severity: high", "severity: urgent").replace(
        "signal: bearing_temp", "signal: 'bearing temp'"
    )
    message = problems_of(write(tmp_path, text))
    assert "rules[0].severity" in message
    assert "rules[0].signal" in message


def test_second_rule_errors_name_its_index(tmp_path: Path) -> None:
    second = RULE.replace("bearing-overtemp", "other").replace("above: 90.0", "above: hot")
    message = problems_of(write(tmp_path, RULE + second))
    assert "rules[1].above" in message


def test_duplicate_rule_names(tmp_path: Path) -> None:
    message = problems_of(write(tmp_path, RULE + RULE))
    assert "rules: " in message
    assert "'bearing-overtemp' is used twice" in message


def test_rules_are_required(tmp_path: Path) -> None:
    path = tmp_path / "alerting.yaml"
    path.write_text("group_id: g\n")
    assert "rules: required key is missing" in problems_of(path)


def test_every_configurable_rule_type_is_registered() -> None:
    # RuleConfig is one model today and a discriminated union once a second type exists.
    members = typing.get_args(RuleConfig) or (RuleConfig,)
    while members and typing.get_origin(members[0]) is not None:  # unwrap Annotated[Union...]
        members = typing.get_args(members[0])
    types = {typing.get_args(m.model_fields["type"].annotation)[0] for m in members}
    assert types == set(RULE_TYPES)


def test_config_can_be_built_in_code(tmp_path: Path) -> None:
    config = AlertingConfig.model_validate(
        {
            "namespace": "x",
            "alert_log": str(tmp_path / "a.jsonl"),
            "rules": [
                {
                    "name": "r",
                    "type": "threshold",
                    "issue_type": "pressure-loss",
                    "signal": "s",
                    "below": 1,
                    "severity": "low",
                }
            ],
        }
    )
    assert config.rules[0].below == 1.0
