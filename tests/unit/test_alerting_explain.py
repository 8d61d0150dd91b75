"""`plantmesh alerting explain`: per rule type, readings through the engine give an alert; the
alert log and the input written to files; explain replays them and says "reproduced exactly"
(exit 0); a tampered log is not reproduced (exit 1) and the differing field is named."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerting.backtest import ClassifiedBatch, backtest
from alerting.cli import register
from alerting.config import AlertingConfig
from alerting.explain import compare, earliest, events_of
from alerting.explain_trace import Row, trace_lines
from plantmesh import cli
from plantmesh.contracts import AlertEvent, AssetPath, Reading, ReadingBatch, encode

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PRESS = AssetPath.parse("plant-a/stamping/line1/press-01")
OTHER = AssetPath.parse("plant-a/stamping/line1/press-02")
Values = Callable[[int], float | tuple[float, int] | None]
"""Value of press-01 at second t, or (value, status code) (None: no reading); press-02 reads 50.0
every second."""
BAD = 0x80000000

THRESHOLD: dict[str, Any] = {
    "name": "bearing-overtemp",
    "type": "threshold",
    "issue_type": "bearing-overtemperature",
    "signal": "temp",
    "above": 90.0,
    "deadband": 5.0,
    "on_delay_s": 5.0,
    "severity": "high",
}
OSCILLATION: dict[str, Any] = {
    "name": "swing",
    "type": "oscillation",
    "issue_type": "vibration-instability",
    "signal": "temp",
    "window_s": 10.0,
    "min_points": 5,
    "growth_windows": 3,
    "min_amplitude": 8.0,
}
SPC: dict[str, Any] = {
    "name": "drift",
    "type": "spc",
    "issue_type": "process-drift",
    "signal": "temp",
    "learn_s": 60.0,
    "min_points": 30,
    "on_delay_s": 3.0,
}
STALE: dict[str, Any] = {
    "name": "silent",
    "type": "stale",
    "issue_type": "comms-loss",
    "signal": "temp",
    "for_s": 10.0,
}
RATE: dict[str, Any] = {
    "name": "heating-fast",
    "type": "rate_of_change",
    "issue_type": "bearing-overtemperature",
    "signal": "temp",
    "window_s": 10.0,
    "per": "second",
    "rising_above": 1.0,
}
FLATLINE: dict[str, Any] = {
    "name": "frozen",
    "type": "flatline",
    "issue_type": "frozen-sensor",
    "signal": "temp",
    "for_s": 15.0,
}

ZONES: dict[str, Any] = {
    "name": "zone",
    "type": "vibration_zone",
    "issue_type": "vibration-instability",
    "signal": "temp",
    "zones": {"press": {"b": 60.0, "c": 90.0, "d": 120.0}},
    "deadband": 2.0,
    "on_delay_s": 3.0,
}
FLAPPING: dict[str, Any] = {
    "name": "chatter",
    "type": "state_flapping",
    "issue_type": "state-flapping",
    "signal": "temp",
    "min_transitions": 6,
    "window_s": 20.0,
}
BAD_QUALITY: dict[str, Any] = {
    "name": "sensor-bad",
    "type": "bad_quality",
    "issue_type": "sensor-fault",
    "signal": "temp",
    "for_s": 5.0,
    "off_delay_s": 3.0,
}


def excursion(t: int) -> float:
    return 95.0 if 10 <= t < 25 else 80.0


def growing_swing(t: int) -> float:
    """Amplitude 1, 2, 4, 8, 16 in windows 0..4 (10 s each), then flat."""
    window = t // 10
    amplitude = 2.0**window if window < 5 else 0.0
    return 50.0 + (amplitude / 2 if t % 2 else -amplitude / 2)


def drift(t: int) -> float:
    noise = random.Random(t).gauss(0.0, 1.0)
    return 50.0 + noise + (4.0 if 90 <= t < 110 else 0.0)


def silence(t: int) -> float | None:
    return None if 20 <= t < 40 else 50.0 + math.sin(t)


def ramp(t: int) -> float:
    return 50.0 + (3.0 * (t - 20) if 20 <= t < 35 else 45.0 if t >= 35 else 0.0)


def frozen(t: int) -> float:
    return 42.0 if 10 <= t < 40 else 50.0 + math.sin(t)


def flapping(t: int) -> float:
    return float(1 + t % 2) if 10 <= t < 30 else 1.0


def bad_for_a_while(t: int) -> float | tuple[float, int]:
    return (50.0, BAD) if 10 <= t < 30 else 50.0


CASES: dict[str, tuple[dict[str, Any], Values, int]] = {
    "threshold": (THRESHOLD, excursion, 40),
    "oscillation": (OSCILLATION, growing_swing, 70),
    "spc": (SPC, drift, 140),
    "stale": (STALE, silence, 60),
    "rate_of_change": (RATE, ramp, 60),
    "flatline": (FLATLINE, frozen, 60),
    "vibration_zone": (ZONES, excursion, 40),
    "state_flapping": (FLAPPING, flapping, 60),
    "bad_quality": (BAD_QUALITY, bad_for_a_while, 60),
}


def batches(values: Values, seconds: int) -> list[ReadingBatch]:
    """press-01 and press-02, one batch per second."""
    out = []
    for t in range(seconds):
        ts = T0 + timedelta(seconds=t)
        readings = []
        for asset, value in ((PRESS, values(t)), (OTHER, 50.0)):
            if value is not None:
                number, code = value if isinstance(value, tuple) else (value, 0)
                readings.append(
                    Reading(
                        asset=asset,
                        signal="temp",
                        value=number,
                        unit="degC",
                        status_code=code,
                        source_ts=ts,
                        gateway_ts=ts,
                    )
                )
        out.append(
            ReadingBatch(gateway_id="gw", session_id="s", seq=t, sent_at=ts, readings=readings)
        )
    return out


def write_case(tmp_path: Path, rule: dict[str, Any], values: Values, seconds: int) -> AlertEvent:
    """Config, input and alert log files; the first press-01 alert of the backtest."""
    items = [(b, "press") for b in batches(values, seconds)]
    (tmp_path / "alerting.yaml").write_text(
        json.dumps({"rules": [rule], "alert_log": "alerts.jsonl"})
    )
    with (tmp_path / "input.jsonl").open("wb") as file:
        for batch, machine_class in items:
            file.write(encode(ClassifiedBatch(machine_class=machine_class, batch=batch)) + b"\n")
    events = backtest(AlertingConfig.model_validate({"rules": [rule]}), items)
    write_log(tmp_path / "alerts.jsonl", events)
    ours = [e for e in events if e.asset == PRESS]
    assert ours, f"no alert of {rule['type']} on press-01: fix the test data"
    return ours[0]


def write_log(path: Path, events: list[AlertEvent]) -> None:
    path.write_bytes(b"".join(encode(event) + b"\n" for event in events))


RunCli = Callable[..., int]


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch) -> RunCli:
    monkeypatch.setattr(cli, "setup_logging", lambda *args: None)

    def run(*argv: str) -> int:
        return cli.dispatch(cli.build_parser([("alerting", register)]), argv)

    return run


def explain(run_cli: RunCli, tmp_path: Path, alert_id: str, *extra: str) -> int:
    config = str(tmp_path / "alerting.yaml")
    source = () if "--from-evidence" in extra else ("--input", str(tmp_path / "input.jsonl"))
    return run_cli("alerting", "explain", alert_id, "--config", config, *source, *extra)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_rule_type_reproduces_exactly_and_a_tampered_log_does_not(
    case: str, run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule, values, seconds = CASES[case]
    alert = write_case(tmp_path, rule, values, seconds)
    assert explain(run_cli, tmp_path, alert.alert_id) == 0
    out = capsys.readouterr().out
    assert "verdict: reproduced exactly" in out
    assert f"trace of {PRESS.key}/temp:" in out

    log = tmp_path / "alerts.jsonl"
    events = [AlertEvent.model_validate_json(line) for line in log.read_bytes().splitlines()]
    later = alert.at + timedelta(seconds=1)
    write_log(log, [e.model_copy(update={"at": later}) if e == alert else e for e in events])
    assert explain(run_cli, tmp_path, alert.alert_id) == 1
    out = capsys.readouterr().out
    assert "verdict: NOT reproduced: event 1 (raised) differs in 1 field(s)" in out
    assert "  at: logged " in out


def test_a_changed_parameter_is_named(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alert = write_case(tmp_path, THRESHOLD, excursion, 40)
    log = tmp_path / "alerts.jsonl"
    events = [AlertEvent.model_validate_json(line) for line in log.read_bytes().splitlines()]
    evidence = alert.evidence.model_copy(
        update={"parameters": {**alert.evidence.parameters, "max": 99.0}}
    )
    tampered = alert.model_copy(update={"evidence": evidence})
    write_log(log, [tampered if e == alert else e for e in events])
    assert explain(run_cli, tmp_path, alert.alert_id) == 1
    assert "  evidence.parameters.max: logged 99.0, replayed 95.0" in capsys.readouterr().out


def test_the_threshold_trace_on_a_known_timeline(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alert = write_case(tmp_path, THRESHOLD, excursion, 40)
    assert explain(run_cli, tmp_path, alert.alert_id) == 0
    out = capsys.readouterr().out
    trace = out.split(f"trace of {PRESS.key}/temp:\n")[1].split("replayed events")[0]
    assert [" ".join(line.split()) for line in trace.splitlines()] == [
        "... 10 readings 2026-01-01T00:00:00Z .. 2026-01-01T00:00:09Z (values 80.0), "
        "condition not held, normal",
        "2026-01-01T00:00:10Z value 95.0 condition held normal -> pending",
        "... 4 readings 2026-01-01T00:00:11Z .. 2026-01-01T00:00:14Z (values 95.0), "
        "condition held, pending",
        "2026-01-01T00:00:15Z value 95.0 condition held pending -> raised",
        "... 9 readings 2026-01-01T00:00:16Z .. 2026-01-01T00:00:24Z (values 95.0), "
        "condition held, raised",
        "2026-01-01T00:00:25Z value 80.0 condition not held raised -> cleared",
        "2026-01-01T00:00:26Z value 80.0 condition not held normal",
        "2026-01-01T00:00:27Z value 80.0 condition not held normal",
    ]
    assert "raised   2026-01-01T00:00:15Z" in out
    assert "cleared  2026-01-01T00:00:25Z" in out


def test_episodes_trace_names_time_decided_steps(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alert = write_case(tmp_path, STALE, silence, 60)
    assert explain(run_cli, tmp_path, alert.alert_id) == 0
    out = capsys.readouterr().out
    assert "2026-01-01T00:00:29Z  event time" in out
    assert "normal -> raised" in out
    assert "raised -> cleared" in out


def test_a_changed_rule_is_said_and_replayed_only_with_current(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alert = write_case(tmp_path, THRESHOLD, excursion, 40)
    changed = {**THRESHOLD, "deadband": 4.0}
    (tmp_path / "alerting.yaml").write_text(
        json.dumps({"rules": [changed], "alert_log": "alerts.jsonl"})
    )
    assert explain(run_cli, tmp_path, alert.alert_id) == 1
    out = capsys.readouterr().out
    assert f"decided by version {alert.rule_version}" in out
    assert "give --current" in out
    assert explain(run_cli, tmp_path, alert.alert_id, "--current") == 1
    out = capsys.readouterr().out
    assert "  rule_version: logged" in out
    assert "  evidence.parameters.deadband: logged 5.0, replayed 4.0" in out


def test_from_evidence_says_it_is_approximate(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alert = write_case(tmp_path, THRESHOLD, excursion, 40)
    explain(run_cli, tmp_path, alert.alert_id, "--from-evidence")
    out = capsys.readouterr().out
    assert "APPROXIMATE" in out
    assert "verdict: approximately (from evidence):" in out


def test_usage_errors_exit_2(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path, THRESHOLD, excursion, 40)
    assert explain(run_cli, tmp_path, "no-such-alert") == 2
    assert "alert no-such-alert not found" in capsys.readouterr().err
    assert explain(run_cli, tmp_path, "x", "--topic", "t") == 2
    assert "--topic only go with --kafka" in capsys.readouterr().err


def test_a_rule_gone_from_the_config_exits_2(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alert = write_case(tmp_path, THRESHOLD, excursion, 40)
    other = {**THRESHOLD, "name": "another"}
    (tmp_path / "alerting.yaml").write_text(
        json.dumps({"rules": [other], "alert_log": "alerts.jsonl"})
    )
    assert explain(run_cli, tmp_path, alert.alert_id) == 2
    assert "rule 'bearing-overtemp' is not in the configuration" in capsys.readouterr().err


def test_compare_events_of_and_earliest() -> None:
    items = [(b, "press") for b in batches(excursion, 40)]
    events = backtest(AlertingConfig.model_validate({"rules": [THRESHOLD]}), items)
    ours = events_of([*events, *events], events[0].alert_id)
    assert ours == events[:2]  # duplicates of at-least-once delivery dropped
    assert compare(ours, ours).exact
    assert compare(ours, ours[:1]).index == 1
    assert earliest(ours) == T0 + timedelta(seconds=10)  # the first crossing


def test_trace_lines_compress_only_unchanged_runs() -> None:
    rows = [Row(T0 + timedelta(seconds=t), "1.0", True, "pending", "pending") for t in range(3)]
    rows.append(Row(T0 + timedelta(seconds=3), "1.0", True, "pending", "raised"))
    lines = list(trace_lines(rows))
    assert len(lines) == 2
    assert lines[0].startswith("... 3 readings")
    assert "pending -> raised" in lines[1]
