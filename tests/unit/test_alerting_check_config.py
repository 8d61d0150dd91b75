"""`plantmesh alerting check-config --config FILE --registry FILE --agent ...`: the registry
against what the agents publish (the check ingest runs too), and each rule's plants, machines,
classes and signal against what the registry and the agents name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from plantmesh.cli import main
from tests.support.check_configs import agent, node, registry


def alerting_config(tmp_path: Path, **rule: Any) -> Path:
    path = tmp_path / "alerting.yaml"
    base = {"name": "hot", "type": "threshold", "issue_type": "bearing-overtemperature",
            "signal": "bearing_temp", "above": 80.0}  # fmt: skip
    path.write_text(yaml.safe_dump({"rules": [{**base, **rule}]}))
    return path


def check(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, list[str]]:
    code = main(["alerting", "check-config", *map(str, args)])
    return code, capsys.readouterr().out.splitlines()


def problems(lines: list[str]) -> list[str]:
    return [line.removeprefix("problem: ") for line in lines if line.startswith("problem: ")]


def test_without_registry_or_agents_it_stays_the_offline_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = check(capsys, "--config", alerting_config(tmp_path, signal="anything"))
    assert code == 0
    assert lines[0].endswith(": ok")
    assert not problems(lines)


def test_rules_and_agents_the_registry_knows_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = alerting_config(tmp_path, plants=["plant-a"], machine_classes=["press"])
    published = agent(tmp_path, [node("press-01", "bearing_temp", "degC")])
    code, lines = check(
        capsys, "--config", config, "--registry", registry(tmp_path), "--agent", published
    )
    assert code == 0, lines
    assert lines[-1] == "no problems"


def test_unknowns_of_agents_and_rules_are_problems_with_where_they_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = alerting_config(
        tmp_path,
        signal="bearing_tmp",
        plants=["plant-q"],
        machines=["press-77"],
        machine_classes=["lathe"],
    )
    published = agent(tmp_path, [node("press-01", "bearing_temp", "furlongs")])
    reg = registry(tmp_path)
    code, lines = check(capsys, "--config", config, "--registry", reg, "--agent", published)
    assert code == 1
    rule = f"{config}: rules[0] (hot)"
    assert problems(lines) == [
        f"{published}: plant-a/press-01/bearing_temp (source plc): unknown unit 'furlongs' "
        "(the writer dead-letters it)",
        f"{rule}: plant 'plant-q' is neither registered nor published",
        f"{rule}: machine 'press-77' is neither registered nor published",
        f"{rule}: machine class 'lathe' is not in the registry",
        f"{rule}: signal 'bearing_tmp' is neither a registry signal nor published by the "
        "agents given (the rule never fires)",
    ]
    assert lines[-1] == "5 problem(s)"


def test_agents_alone_check_units_and_rule_signals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    published = agent(tmp_path, [node("press-01", "temp")])
    code, lines = check(capsys, "--config", alerting_config(tmp_path), "--agent", published)
    assert code == 1
    assert [p.split(": ", 2)[-1] for p in problems(lines)] == [
        "signal 'bearing_temp' is neither a registry signal nor published by the agents given "
        "(the rule never fires)"
    ]
