"""`plantmesh sim score` on hand-made alert logs and ground truth."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from plantmesh.cli import build_parser, dispatch
from plantmesh.contracts import AlertEvent
from simulators.cli import register
from simulators.scoring import AlertLogError, read_alerts, score
from simulators.truth import TruthRecord, read_truth

T0 = datetime(2026, 3, 1, 6, 0, 0, tzinfo=UTC)


def truth(
    kind: str,
    machine: str,
    signal: str | None,
    start_s: float,
    end_s: float | None,
    plant: str = "plant-a",
) -> TruthRecord:
    return TruthRecord(
        event=0,
        kind=kind,
        plant=plant,
        area="area",
        line="line1",
        machine=machine,
        signal=signal,
        protocol="opcua",
        start=T0 + timedelta(seconds=start_s),
        end=T0 + timedelta(seconds=end_s) if end_s is not None else None,
        start_s=start_s,
        end_s=end_s,
        severity="high",
    )


def alert(
    machine: str,
    signal: str,
    at_s: float,
    kind: str = "raised",
    plant: str = "plant-a",
    rule: str = "r",
) -> AlertEvent:
    return AlertEvent.model_validate(
        {
            "alert_id": f"{machine}-{signal}-{at_s}",
            "kind": kind,
            "rule": rule,
            "asset": {"plant": plant, "area": "area", "line": "line1", "machine": machine},
            "signal": signal,
            "severity": "high",
            "at": (T0 + timedelta(seconds=at_s)).isoformat(),
            "evidence": {"summary": "s", "condition": "c"},
        }
    )


TRUTH = [
    truth("excursion", "press-01", "bearing_temp", 20, 35),
    truth("excursion", "press-02", "bearing_temp", 100, 115),
    truth("oscillation", "mill-01", "vibration_rms", 200, 800),
    truth("plc_restart", "pump-01", None, 300, 330),
    truth("drift", "press-03", "bearing_temp", 400, None),
]
ALERTS = [
    alert("press-01", "bearing_temp", 26),  # excursion 1, 6 s late
    alert("press-01", "bearing_temp", 36, kind="cleared"),  # clears count for nothing
    alert("press-01", "bearing_temp", 50),  # still excursion 1 (within the 60 s grace)
    # excursion 2 is missed: this alert is on another plant
    alert("press-02", "bearing_temp", 104, plant="plant-b"),
    alert("mill-01", "vibration_rms", 500),  # oscillation, 300 s late
    alert("mill-01", "vibration_rms", 1000),  # after the end and the grace: false
    alert("pump-01", "stale_data", 301),  # restart: any signal of the machine
    alert("press-03", "bearing_temp", 900),  # open-ended drift: to the last alert
    alert("press-01", "bearing_temp", 700),  # nothing scripted then: false
]


def test_precision_recall_and_latency_per_kind() -> None:
    result = score(ALERTS, TRUTH)
    kinds = result.kinds
    assert list(kinds) == ["drift", "excursion", "oscillation", "plc_restart"]
    excursion = kinds["excursion"]
    assert (excursion.events, excursion.detected, excursion.recall) == (2, 1, 0.5)
    assert excursion.latencies_s == [6.0]
    # two alerts matched; one false alert on press-01 bearing_temp (t=700)
    assert (excursion.true_alerts, excursion.false_alerts) == (2, 1)
    assert excursion.precision == pytest.approx(2 / 3)
    oscillation = kinds["oscillation"]
    assert (oscillation.recall, oscillation.latencies_s) == (1.0, [300.0])
    assert (oscillation.true_alerts, oscillation.false_alerts) == (1, 1)
    restart = kinds["plc_restart"]
    assert (restart.recall, restart.latencies_s, restart.precision) == (1.0, [1.0], 1.0)
    assert kinds["drift"].latencies_s == [500.0]
    overall = result.overall
    assert (overall.events, overall.detected) == (5, 4)
    raised = [a for a in ALERTS if a.kind == "raised"]
    assert overall.true_alerts + overall.false_alerts == len(raised) == 8
    assert overall.false_alerts == 3  # plant-b press-02, mill-01 at 1000, press-01 at 700
    assert [m.machine for m in result.missed] == ["press-02"]
    assert overall.latency("median") == pytest.approx(153.0)  # of 6, 300, 1, 500


def test_grace_widens_the_window_after_the_end() -> None:
    late = [alert("mill-01", "vibration_rms", 850)]  # 50 s after the oscillation ended
    window = [truth("oscillation", "mill-01", "vibration_rms", 200, 800)]
    assert score(late, window, grace=timedelta(seconds=60)).overall.detected == 1
    assert score(late, window, grace=timedelta(seconds=30)).overall.detected == 0
    early = [alert("mill-01", "vibration_rms", 199)]  # before the start: never a detection
    assert score(early, window).overall.detected == 0


def test_nothing_to_score_gives_no_ratios() -> None:
    result = score([], [])
    assert result.overall.recall is None
    assert result.overall.precision is None
    assert result.overall.latency("mean") is None


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def sim(*argv: str) -> int:
    return dispatch(build_parser([("sim", register)]), ["sim", *argv])


def test_score_command_prints_a_table_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alerts = write_jsonl(tmp_path / "alerts.jsonl", [a.model_dump(mode="json") for a in ALERTS])
    truth_file = write_jsonl(tmp_path / "truth.jsonl", [t.to_json() for t in TRUTH])
    assert read_truth(truth_file) == TRUTH
    assert sim("score", "--alerts", str(alerts), "--truth", str(truth_file)) == 0
    table = capsys.readouterr().out
    excursion = next(line for line in table.splitlines() if line.startswith("excursion"))
    assert excursion.split()[:7] == ["excursion", "2", "1", "0.50", "2", "1", "0.67"]
    assert "missed: excursion on plant-a/press-02/bearing_temp" in table
    assert "false alert: r on plant-a/press-01/bearing_temp" in table
    argv = ["score", "--alerts", str(alerts), "--truth", str(truth_file), "--json"]
    assert sim(*argv, "--grace", "0") == 0
    report = json.loads(capsys.readouterr().out)
    kinds = {k["kind"]: k for k in report["kinds"]}
    assert kinds["excursion"]["true_alerts"] == 1  # the alert at 50 s needs the grace
    assert report["overall"]["events"] == 5


def test_bad_alert_log_is_reported_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text(ALERTS[0].model_dump_json() + "\n" + '{"kind": "raised"}\n')
    with pytest.raises(AlertLogError, match=r"alerts.jsonl:2: invalid AlertEvent"):
        read_alerts(alerts)
    truth_file = write_jsonl(tmp_path / "truth.jsonl", [])
    assert sim("score", "--alerts", str(alerts), "--truth", str(truth_file)) == 2
    assert "alerts.jsonl:2" in capsys.readouterr().err
    missing = str(tmp_path / "nope.jsonl")
    assert sim("score", "--alerts", missing, "--truth", str(truth_file)) == 2
    assert "nope.jsonl" in capsys.readouterr().err


def test_demo_scenario_truth_scores_a_threshold_detector_perfectly() -> None:
    """The whole loop without servers: the demo scenario's truth, alerts from a 90 degC
    threshold with a 5 s on-delay over the served values, then the score."""
    from simulators.engine import SimulationEngine
    from simulators.network import load_network
    from simulators.scenario import load_scenario

    demo = Path(__file__).resolve().parents[2] / "deploy" / "demo"
    network = load_network(demo / "network.yaml")
    engine = SimulationEngine(
        network, start=T0, scenario=load_scenario(demo / "scenarios" / "demo.yaml", network)
    )
    alerts, truth_lines = [], []
    above_since: dict[str, datetime] = {}
    for _ in range(80):
        frame = engine.next_tick()
        truth_lines.extend(frame.truth)
        for record in frame.records():
            if record.signal != "bearing_temp":
                continue
            if float(record.value) <= 90.0:
                above_since.pop(record.series_key, None)
                continue
            since = above_since.setdefault(record.series_key, record.source_ts)
            if record.source_ts - since == timedelta(seconds=5):
                alerts.append(alert(record.machine, "bearing_temp", 0, plant=record.plant))
                alerts[-1] = alerts[-1].model_copy(update={"at": record.source_ts})
    result = score(alerts, truth_lines)
    assert [(t.plant, t.machine) for t in truth_lines] == [
        ("plant-a", "press-01"),
        ("plant-b", "press-01"),
    ]
    assert (result.overall.recall, result.overall.precision) == (1.0, 1.0)
    assert result.overall.latencies_s == [5.0, 5.0]
