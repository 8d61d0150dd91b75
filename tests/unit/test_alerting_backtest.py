"""Backtests on hand-made batches: the same events as the engine fed directly, event time advanced
at the end, machine classes carried through; the JSON-lines source and the CLI on a file."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerting.backtest import (
    Backtest,
    BacktestError,
    Progress,
    backtest,
    read_jsonl,
    summarize,
)
from alerting.catalogue import load_catalogue
from alerting.cli import register
from alerting.config import AlertingConfig
from alerting.engine import Engine
from alerting.times import when as _when
from plantmesh import cli
from plantmesh.contracts import AlertEvent, AssetPath, Reading, ReadingBatch, decode, encode
from tests.support.threshold import BEARING_RULE

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PRESS = AssetPath.parse("plant-a/stamping/line1/press-01")
OTHER = AssetPath.parse("plant-a/stamping/line1/press-02")


def config(**overrides: Any) -> AlertingConfig:
    return AlertingConfig.model_validate({"rules": [BEARING_RULE], **overrides})


def reading(t: float, value: float, asset: AssetPath = PRESS) -> Reading:
    ts = T0 + timedelta(seconds=t)
    return Reading(
        asset=asset, signal="bearing_temp", value=value, unit="degC", source_ts=ts, gateway_ts=ts
    )


def batch(seq: int, *readings: Reading) -> ReadingBatch:
    return ReadingBatch(
        gateway_id="gw-1",
        session_id="s1",
        seq=seq,
        sent_at=readings[-1].gateway_ts,
        readings=list(readings),
    )


def excursion() -> list[ReadingBatch]:
    """press-01 above 90 from t=10 to t=25 (raise at 15, clear at 25), 5 readings a batch."""
    readings = [reading(t, 95.0 if 10 <= t < 25 else 80.0) for t in range(40)]
    return [batch(i, *readings[i * 5 : i * 5 + 5]) for i in range(8)]


def timeline(events: list[AlertEvent]) -> list[tuple[str, float]]:
    return [(e.kind.value, (e.at - T0).total_seconds()) for e in events]


def test_same_events_as_the_engine_fed_directly() -> None:
    cfg = config()
    engine = Engine.from_config(cfg.rules, load_catalogue(cfg.catalogue), lateness_s=2.0)
    direct: list[AlertEvent] = []
    for b in excursion():
        direct.extend(engine.process_batch(b, "press"))
        direct.extend(engine.advance())
    direct.extend(engine.advance())

    replayed = backtest(cfg, [(b, "press") for b in excursion()])

    assert [encode(e) for e in replayed] == [encode(e) for e in direct]
    assert timeline(replayed) == [("raised", 15.0), ("cleared", 25.0)]


def test_machine_class_reaches_the_events() -> None:
    events = backtest(config(), [(b, "press") for b in excursion()])
    assert {e.machine_class for e in events} == {"press"}
    assert {e.machine_class for e in backtest(config(), [(b, None) for b in excursion()])} == {None}


def test_the_final_advance_raises_a_pending_on_delay_of_a_report_by_exception_signal() -> None:
    """press-01 reports 95 once (it reports only on change); press-02 keeps event time moving.
    No reading of press-01 ever ends the on-delay: only event time does."""
    batches = [
        (batch(0, reading(0, 95.0)), None),
        (batch(1, *(reading(t, 70.0, OTHER) for t in range(1, 21))), None),
    ]
    cfg = config()
    engine = Engine.from_config(cfg.rules, load_catalogue(cfg.catalogue), lateness_s=2.0)
    assert [e for b, _ in batches for e in engine.process_batch(b)] == []

    run = Backtest(cfg, advance_every=10)
    assert [run.feed(b, c) for b, c in batches] == [[], []]
    events = run.finish()
    assert timeline(events) == [("raised", 5.0)]
    assert events[0].asset == PRESS


def test_advance_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="advance_every"):
        Backtest(config(), advance_every=0)


def test_progress_reports_every_n_batches_and_every_few_seconds() -> None:
    now = [0.0]
    out = io.StringIO()
    progress = Progress(out, every_batches=3, every_s=60.0, clock=lambda: now[0])
    backtest(config(), [(b, None) for b in excursion()], progress=progress)
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "backtest: 3 batches, 15 readings, 0 events, event time 2026-01-01T00:00:14+00:00"
    )
    assert len(lines) == 2  # after batches 3 and 6
    assert (progress.batches, progress.readings, progress.events) == (8, 40, 2)

    out.truncate(0)
    out.seek(0)
    slow = Progress(out, every_batches=1000, every_s=5.0, clock=lambda: now[0])
    run = Backtest(config(), progress=slow)
    run.feed(*(excursion()[0], None))
    assert out.getvalue() == ""
    now[0] = 6.0
    run.feed(*(excursion()[1], None))
    assert out.getvalue().startswith("backtest: 2 batches, 10 readings")


def test_summary_counts_per_rule_and_per_issue_type() -> None:
    events = backtest(config(), [(b, None) for b in excursion()])
    assert summarize(events) == [
        "rule                      raised  cleared",
        "bearing-overtemp               1        1",
        "issue type                raised  cleared",
        "bearing-overtemperature        1        1",
    ]


# --- JSON lines ---------------------------------------------------------------------------------
def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_read_jsonl_takes_both_line_forms(tmp_path: Path) -> None:
    first, second = excursion()[:2]
    path = write_lines(
        tmp_path / "in.jsonl",
        [
            encode(first).decode(),
            "",
            json.dumps({"machine_class": "press", "batch": json.loads(encode(second))}),
            json.dumps({"batch": json.loads(encode(second))}),
        ],
    )
    assert list(read_jsonl(path)) == [(first, None), (second, "press"), (second, None)]


def test_read_jsonl_names_the_file_and_line_of_a_bad_line(tmp_path: Path) -> None:
    good = encode(excursion()[0]).decode()
    bad_value = good.replace('"value":80.0', '"value":{"x":1}', 1)
    path = write_lines(tmp_path / "in.jsonl", [good, bad_value])
    with pytest.raises(BacktestError, match=rf"^{path}:2: invalid ReadingBatch: readings\[0\]"):
        list(read_jsonl(path))

    path = write_lines(tmp_path / "wrapped.jsonl", [json.dumps({"batch": {}, "machine": "x"})])
    with pytest.raises(BacktestError, match=rf"^{path}:1: invalid ClassifiedBatch"):
        list(read_jsonl(path))

    path = write_lines(tmp_path / "garbage.jsonl", [good, good, "{not json"])
    with pytest.raises(BacktestError, match=rf"^{path}:3: invalid ReadingBatch"):
        list(read_jsonl(path))


# --- the command --------------------------------------------------------------------------------
RunCli = Callable[..., int]


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch) -> RunCli:
    monkeypatch.setattr(cli, "setup_logging", lambda *args: None)

    def run(*argv: str) -> int:
        return cli.dispatch(cli.build_parser([("alerting", register)]), argv)

    return run


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "alerting.yaml"
    path.write_text(json.dumps({"rules": [BEARING_RULE]}))  # JSON is YAML
    return path


def test_cli_on_a_file_writes_the_alert_log_and_a_summary(
    run_cli: RunCli, config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        [
            json.dumps({"machine_class": "press", "batch": json.loads(encode(b))})
            for b in excursion()
        ],
    )
    out = tmp_path / "out" / "alerts.jsonl"
    argv = ["--input", str(source), "--out", str(out), "--truth", "truth.jsonl"]
    assert run_cli("alerting", "backtest", "--config", str(config_file), *argv) == 0

    events = [decode(AlertEvent, line) for line in out.read_bytes().splitlines()]
    assert timeline(events) == [("raised", 15.0), ("cleared", 25.0)]
    assert events[0].machine_class == "press"
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"backtest of {config_file} on {source}"
    assert printed[1:4] == [
        "8 batches, 40 readings",
        "event time reached 2026-01-01T00:00:39+00:00",
        "1 raised, 1 cleared",
    ]
    assert "  bearing-overtemp               1        1" in printed
    assert "  bearing-overtemperature        1        1" in printed
    assert f"alert log: {out} (2 events)" in printed
    assert printed[-1] == f"score it: plantmesh sim score --alerts {out} --truth truth.jsonl"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--input", "x.jsonl", "--since", "10m"], "--since only go with --kafka"),
        (["--input", "x.jsonl", "--truth", "t.jsonl"], "--truth needs --out"),
        (["--kafka", "--advance-every", "0"], "--advance-every must be at least 1"),
    ],
)
def test_cli_usage_errors_exit_2(
    run_cli: RunCli,
    config_file: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    assert run_cli("alerting", "backtest", "--config", str(config_file), *argv) == 2
    assert message in capsys.readouterr().err


def test_cli_needs_exactly_one_source(run_cli: RunCli, config_file: Path) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli("alerting", "backtest", "--config", str(config_file))
    assert info.value.code == 2


def test_cli_reports_a_bad_input_line_and_exits_1(
    run_cli: RunCli, config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [encode(excursion()[0]).decode(), "{oops"])
    assert (
        run_cli("alerting", "backtest", "--config", str(config_file), "--input", str(source)) == 1
    )
    assert f"backtest failed: {source}:2: invalid ReadingBatch" in capsys.readouterr().err

    missing = tmp_path / "missing.jsonl"
    assert (
        run_cli("alerting", "backtest", "--config", str(config_file), "--input", str(missing)) == 1
    )
    assert f"backtest failed: {missing}: No such file or directory" in capsys.readouterr().err


def test_times_are_iso_or_ago() -> None:
    assert _when("2026-01-01T06:00:00Z") == datetime(2026, 1, 1, 6, tzinfo=UTC)
    assert _when("2026-01-01T06:00") == datetime(2026, 1, 1, 6, tzinfo=UTC)  # UTC unless it says
    for text, ago in (("10m", 600), ("-10m", 600), ("1.5h", 5400), ("2d", 172800)):
        expected = datetime.now(UTC) - timedelta(seconds=ago)
        assert abs((_when(text) - expected).total_seconds()) < 5
    with pytest.raises(Exception, match="expected an ISO time"):
        _when("yesterday")
