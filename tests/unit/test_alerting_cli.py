from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from alerting.cli import register
from plantmesh import cli

RunCli = Callable[..., int]

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "alerting" / "sample.yaml"


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch) -> RunCli:
    # dispatch() sets up logging on the root logger; keep pytest's capture intact.
    monkeypatch.setattr(cli, "setup_logging", lambda *args: None)

    def run(*argv: str) -> int:
        return cli.dispatch(cli.build_parser([("alerting", register)]), argv)

    return run


def test_check_config_on_the_sample(run_cli: RunCli, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("alerting", "check-config", "--config", str(SAMPLE)) == 0
    out = capsys.readouterr().out
    assert f"{SAMPLE}: ok" in out
    assert "telemetry.normalized -> alerts.events" in out
    assert (
        "bearing-overtemp [threshold, bearing-overtemperature, high]: bearing_temp above 90.0, deadband 5.0"
        in out
    )
    assert (
        "hydraulic-pressure-low [threshold, pressure-loss, medium]: hydraulic_pressure below 120.0"
        in out
    )
    assert "(plants plant-a,plant-b)" in out


def test_check_config_reports_errors_with_exit_code_2(
    run_cli: RunCli,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SAMPLE.read_text().replace("deadband: 5.0", "deadband: -5.0"))
    assert run_cli("alerting", "check-config", "--config", str(bad)) == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert "rules[0].deadband" in err


def test_alerting_requires_a_subcommand(run_cli: RunCli) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli("alerting")
    assert info.value.code == 2
