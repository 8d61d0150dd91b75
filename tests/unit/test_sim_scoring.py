"""`plantmesh sim score` on hand-made alert logs and ground truth."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from plantmesh.cli import build_parser, dispatch
from plantmesh.contracts import AlertEvent
from simulators.catalog import signal_catalog
from simulators.cli import register
from simulators.event_config import should_alert_by_default
from simulators.isa_figures import isa_figures
from simulators.matching import episodes
from simulators.network import load_network
from simulators.scenario import load_scenario
from simulators.scoring import AlertLogError, read_alerts, score
from simulators.truth import TruthRecord, read_truth, truth_records

T0 = datetime(2026, 3, 1, 6, 0, 0, tzinfo=UTC)
DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo"


def truth(
    kind: str,
    machine: str,
    signal: str | None,
    start_s: float,
    end_s: float | None,
    plant: str = "plant-a",
    event: int = 0,
) -> TruthRecord:
    return TruthRecord(
        event=event,
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
        should_alert=should_alert_by_default(kind),
    )


def alert(
    machine: str,
    signal: str,
    at_s: float,
    kind: str = "raised",
    plant: str = "plant-a",
    rule: str = "r",
    alert_id: str | None = None,
) -> AlertEvent:
    return AlertEvent.model_validate(
        {
            "alert_id": alert_id or f"{plant}/{machine}/{signal}/{rule}@{at_s}",
            "kind": kind,
            "issue_type": "process-drift",
            "rule": rule,
            "rule_version": "v1",
            "asset": {"plant": plant, "area": "area", "line": "line1", "machine": machine},
            "signal": signal,
            "severity": "high",
            "at": (T0 + timedelta(seconds=at_s)).isoformat(),
            "evidence": {"summary": "s", "condition": "c"},
        }
    )


def episode(
    machine: str, signal: str, at_s: float, length_s: float = 1.0, plant: str = "plant-a"
) -> list[AlertEvent]:
    """A raised alert and its clear."""
    raised = alert(machine, signal, at_s, plant=plant)
    cleared = alert(machine, signal, at_s + length_s, "cleared", plant, alert_id=raised.alert_id)
    return [raised, cleared]


TRUTH = [
    truth("excursion", "press-01", "bearing_temp", 20, 35),
    truth("excursion", "press-02", "bearing_temp", 100, 115),
    truth("oscillation", "mill-01", "vibration_rms", 200, 800),
    truth("plc_restart", "pump-01", None, 300, 330),
    truth("drift", "press-03", "bearing_temp", 400, None),
]
ALERTS = [
    *episode("press-01", "bearing_temp", 26, 10),  # excursion 1, 6 s late; cleared at 36
    alert("press-01", "bearing_temp", 50),  # a second episode in excursion 1's window: false
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
    # One event, one detection: the alert at 50 s used to count as a second true alert (88
    # alerts on one event scored precision 1.00); now it is false, like the one at 700 s.
    assert (excursion.true_alerts, excursion.false_alerts) == (1, 2)
    assert excursion.precision == pytest.approx(1 / 3)
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
    assert overall.false_alerts == 4  # press-01 at 50 and 700, plant-b press-02, mill-01 at 1000
    assert overall.precision == 0.5
    assert overall.f1 == pytest.approx(2 * 4 / (2 * 4 + 4 + 1))
    assert [m.machines for m in result.missed] == [("press-02",)]
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
    assert result.overall.f1 is None
    assert result.overall.latency("mean") is None
    assert result.isa.alerts == 0


def test_episodes_are_alert_ids_from_raised_to_cleared() -> None:
    first = episode("press-01", "bearing_temp", 10)
    again = alert("press-01", "bearing_temp", 12, alert_id=first[0].alert_id)
    duplicate = alert("press-01", "bearing_temp", 10, alert_id=first[0].alert_id)
    found = episodes([*first, duplicate, again])  # raised again after its clear: a new episode
    assert [(e.raised - T0).total_seconds() for e in found] == [10.0, 12.0]
    assert found[0].cleared == T0 + timedelta(seconds=11)
    orphan = alert("press-01", "bearing_temp", 5, "cleared", alert_id="x")
    assert episodes([orphan, duplicate, duplicate]) == episodes([duplicate])


def test_alert_on_everything_scores_f1_below_a_tenth() -> None:
    """An alert log that reads no data: every series of the demo network raises and clears an
    alert every 30 s for the whole fault tour. It used to score recall 1.00 on every kind."""
    network = load_network(DEMO / "network.yaml")
    tour = load_scenario(DEMO / "scenarios" / "fault-tour.yaml", network)
    assert tour.duration_s is not None
    tour_truth = [
        line
        for i, event in enumerate(tour.events)
        for line in truth_records(event, i, network, lambda s: T0 + timedelta(seconds=s))
    ]
    alerts = [
        event
        for entry in signal_catalog(network)
        for t in range(0, int(tour.duration_s), 30)
        for event in episode(entry.machine, entry.signal.name, t, plant=entry.plant)
    ]
    result = score(alerts, tour_truth)
    overall = result.overall
    assert overall.events == 13  # one restart and two comms losses, whatever machines they hit
    assert (overall.harmless, overall.should_alert) == (2, 11)  # spikes, clock_skew
    assert overall.detected == 11  # it does find everything ...
    assert overall.true_alerts == 11
    assert overall.precision is not None
    assert overall.precision < 0.01  # ... among thousands of false alerts
    assert overall.f1 is not None
    assert overall.f1 < 0.1
    assert overall.paged == 2  # and pages on both harmless events
    assert result.isa.flood_windows == result.isa.windows  # flooded all along
    assert result.isa.chattering  # every series raises 3 times a minute (0, 30, 60 s)


def test_88_alerts_for_3_events_is_precision_3_in_88() -> None:
    events = [truth("excursion", f"press-0{n}", "bearing_temp", 100, 400) for n in (1, 2, 3)]
    alerts = [
        alert(f"press-0{n}", "bearing_temp", 100 + 10 * k)
        for n, count in ((1, 30), (2, 29), (3, 29))
        for k in range(count)
    ]
    assert len(alerts) == 88
    result = score(alerts, events)
    assert (result.overall.recall, result.overall.true_alerts) == (1.0, 3)
    assert result.overall.precision == pytest.approx(3 / 88)
    assert result.overall.latencies_s == [0.0, 0.0, 0.0]  # the earliest episode detects


def test_harmless_events_without_alerts_are_neither_miss_nor_false() -> None:
    spikes = [truth("spikes", "compressor-01", "motor_current", 60, 360)]
    quiet = score([], spikes)
    assert (quiet.missed, quiet.false_alerts, quiet.paged) == ([], [], [])
    assert quiet.kinds["spikes"].recall is None  # nothing that should alert
    assert quiet.overall.f1 is None
    paged = score([alert("compressor-01", "motor_current", 70)], spikes)
    assert paged.overall.precision == 0.0
    assert paged.overall.f1 == 0.0
    assert [(p.event.kind, len(p.alerts)) for p in paged.paged] == [("spikes", 1)]
    assert paged.kinds["spikes"].false_alerts == 1


def test_one_event_one_episode_and_back() -> None:
    # Two events on one series: a long drift and a short excursion inside it. The earliest
    # episode (55 s) is the excursion's only one, so the drift takes the next (90 s).
    events = [
        truth("drift", "press-01", "bearing_temp", 0, 100),
        truth("excursion", "press-01", "bearing_temp", 50, 60),
    ]
    both = score([alert("press-01", "bearing_temp", s) for s in (55, 90)], events, timedelta(0))
    assert both.overall.detected == 2
    assert both.kinds["drift"].latencies_s == [90.0]
    assert both.kinds["excursion"].latencies_s == [5.0]
    # One episode detects one event, never both.
    one = score([alert("press-01", "bearing_temp", 55)], events, timedelta(0))
    assert (one.overall.detected, one.overall.true_alerts, one.overall.false_alerts) == (1, 1, 0)
    assert len(one.missed) == 1


def test_a_plc_restart_is_one_event_whatever_machines_it_serves() -> None:
    restart = [
        truth("plc_restart", machine, None, 300, 330, event=4)
        for machine in ("press-01", "pump-01", "mill-01")
    ]
    alerts = [alert(m, "stale_data", 305 + i) for i, m in enumerate(("pump-01", "mill-01"))]
    result = score(alerts, restart)
    assert (result.overall.events, result.overall.detected) == (1, 1)
    assert result.overall.latencies_s == [5.0]
    assert result.overall.false_alerts == 1  # one restart, one alert: the second is noise
    missed = score([], restart).missed
    assert [(m.kind, m.where) for m in missed] == [
        ("plc_restart", "plant-a/press-01,pump-01,mill-01/*")
    ]


def test_one_alert_for_a_whole_gateway_detects_a_machine_wide_event_of_its_plant() -> None:
    restart = [
        truth("plc_restart", machine, None, 300, 330, event=4)
        for machine in ("press-01", "pump-01")
    ]
    gateway = AlertEvent.model_validate(
        alert("gw-plant-a", "data-flow", 312).model_dump()
        | {"asset": {"plant": "plant-a", "area": "gateway", "line": "gateway", "machine": "gw-a"}}
    )
    result = score([gateway], restart)
    assert (result.overall.detected, result.overall.false_alerts) == (1, 0)
    assert result.overall.latencies_s == [12.0]
    # It stands for machines, not signals: an event on one signal is not its to detect.
    drift = [truth("drift", "press-01", "bearing_temp", 300, 400)]
    assert score([gateway], drift).overall.detected == 0
    other_plant = [truth("plc_restart", "press-01", None, 300, 330, plant="plant-b")]
    assert score([gateway], other_plant).overall.detected == 0


def test_isa_figures_of_a_hand_made_log() -> None:
    log = [
        *(alert("press-01", "bearing_temp", s) for s in (0, 30, 60, 700)),  # chatters at 0-60 s
        *(alert("pump-01", "pressure", s) for s in (100, 300, 500, 590)),  # 4 in 10 min
        *(alert(f"conveyor-{n:02}", "speed", 1300) for n in range(12)),  # a flood
    ]
    figures = isa_figures(episodes(log), None, None)
    assert (figures.alerts, figures.windows) == (20, 3)  # 0-10, 10-20, 20-30 min
    assert figures.mean == pytest.approx(20 / 3)
    assert (figures.peak, figures.flood_windows) == (12, 1)  # 7, 1, 12 per window
    assert figures.flood_percent == pytest.approx(100 / 3)
    assert [(b.series, b.count, b.start) for b in figures.chattering] == [
        ("plant-a/press-01/bearing_temp r", 3, T0)
    ]
    assert [(b.series, b.count) for b in figures.frequent] == [("plant-a/pump-01/pressure r", 4)]
    # 61 s apart is no longer chattering; from the truth's tick 0 the run has more windows.
    spread = episodes([alert("press-01", "bearing_temp", s) for s in (0, 30, 61)])
    assert isa_figures(spread, None, None).chattering == []
    assert isa_figures(spread, T0 - timedelta(minutes=10), None).windows == 2


def test_should_alert_comes_from_the_kind_the_event_or_an_old_file() -> None:
    network = load_network(DEMO / "network.yaml")
    scenario = load_scenario(DEMO / "scenarios" / "cross-plant-instability.yaml", network)
    flags = [
        (line.kind, line.should_alert)
        for i, event in enumerate(scenario.events)
        for line in truth_records(event, i, network, lambda s: T0 + timedelta(seconds=s))
    ]
    assert flags == [("oscillation", True), ("oscillation", True), ("step", False)]
    old = {
        k: v for k, v in truth("spikes", "m", "s", 0, 1).to_json().items() if k != "should_alert"
    }
    assert TruthRecord.from_json(old).should_alert is False
    assert TruthRecord.from_json({**old, "kind": "excursion"}).should_alert is True


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
    assert "overall: precision 0.500, recall 0.800, F1 0.615" in table
    assert "floods (> 10 alerts in 10 min): 0 windows" in table
    assert "chattering series (>= 3 raised within 60 s): none" in table
    excursion = next(line for line in table.splitlines() if line.startswith("excursion"))
    # kind, events, harmless, detected, recall, alerts, false, precision
    assert excursion.split()[:8] == ["excursion", "2", "0", "1", "0.50", "1", "2", "0.33"]
    assert "missed: excursion on plant-a/press-02/bearing_temp" in table
    assert "false alert: r on plant-a/press-01/bearing_temp" in table
    argv = ["score", "--alerts", str(alerts), "--truth", str(truth_file), "--json"]
    assert sim(*argv, "--grace", "0") == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {
        "overall", "kinds", "isa_18_2", "missed", "paged_on_harmless", "false_alerts"
    }  # fmt: skip
    kinds = {k["kind"]: k for k in report["kinds"]}
    assert kinds["excursion"]["true_alerts"] == 1  # the alert at 50 s is false, grace or not
    assert report["overall"]["events"] == 5
    assert report["isa_18_2"]["alerts"] == 8
    assert len(report["false_alerts"]) == report["overall"]["false_alerts"]


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

    network = load_network(DEMO / "network.yaml")
    engine = SimulationEngine(
        network, start=T0, scenario=load_scenario(DEMO / "scenarios" / "demo.yaml", network)
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
    # The bearing overheats; the mills' vibration is another rule's (and story's).
    truth_lines = [t for t in truth_lines if t.signal == "bearing_temp"]
    result = score(alerts, truth_lines)
    assert [(t.plant, t.machine) for t in truth_lines] == [
        ("plant-a", "press-01"),
        ("plant-b", "press-01"),
    ]
    assert (result.overall.recall, result.overall.precision) == (1.0, 1.0)
    assert result.overall.latencies_s == [5.0, 5.0]
    assert (result.isa.chattering, result.isa.flood_windows) == ([], 0)
