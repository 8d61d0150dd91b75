"""`plantmesh alerts backtest` refusing what it cannot use, before and without InfluxDB: exit 2
naming the argument, file or key; exit 1 when InfluxDB cannot be reached."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from alerting.cli import register
from plantmesh import cli

RunCli = Callable[..., int]
RULES = """rules:
  - name: hot
    type: threshold
    issue_type: bearing-overtemperature
    signal: bearing_temp
    above: 90
"""
PERIOD = ("--from", "2026-01-01T00:00Z", "--to", "2026-01-01T01:00Z")


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch) -> RunCli:
    monkeypatch.setattr(cli, "setup_logging", lambda *args: None)

    def run(*argv: str) -> int:
        return cli.dispatch(cli.build_parser([("alerting", register)]), argv)

    return run


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


def test_the_period_must_run_forward(
    run_cli: RunCli, rules_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli(
        "alerts", "backtest", "--rules", str(rules_file), "--from", PERIOD[3], "--to", PERIOD[1]
    )
    assert code == 2
    assert "--from (2026-01-01T01:00:00+00:00) must be before --to" in capsys.readouterr().err


def test_a_bad_rule_names_the_file_and_key(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES.replace("above: 90", "abov: 90"))
    assert run_cli("alerts", "backtest", "--rules", str(bad), *PERIOD) == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert "rules[0]" in err


def test_an_unreadable_truth_file_is_named(
    run_cli: RunCli, rules_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = tmp_path / "truth.jsonl"
    truth.write_text("not json\n")
    assert (
        run_cli("alerts", "backtest", "--rules", str(rules_file), *PERIOD, "--truth", str(truth))
        == 2
    )
    assert f"{truth}:1: not a truth line" in capsys.readouterr().err
    missing = tmp_path / "missing.jsonl"
    assert (
        run_cli("alerts", "backtest", "--rules", str(rules_file), *PERIOD, "--truth", str(missing))
        == 2
    )
    assert f"{missing}: No such file or directory" in capsys.readouterr().err


def test_an_unreachable_influxdb_exits_1(
    run_cli: RunCli, rules_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--influx-url", "http://127.0.0.1:9")  # discard port: nothing listens
    assert run_cli("alerts", "backtest", "--rules", str(rules_file), *PERIOD, *args) == 1
    assert "backtest failed: cannot reach InfluxDB at http://127.0.0.1:9" in capsys.readouterr().err
