"""The backtest report on a hand-made alert log with known answers: counts per rule and issue
type, ISA-18.2 alarm load over the period, truth scoring (precision, recall, latency p50/p90);
rules sent as text; and the scoring shared with the simulators."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from alerting.backtest_report import (
    BacktestReport,
    InputSummary,
    build_report,
    format_report,
    percentile,
)
from alerting.backtest_run import config_from_text
from plantmesh.config import ConfigError
from plantmesh.contracts import AlertEvent, AlertEventKind, AssetPath, Evidence, Severity
from plantmesh.scoring import score as shared_score
from plantmesh.scoring.truth import TruthFileError, TruthRecord, parse_truth

T0 = datetime(2026, 1, 1, tzinfo=UTC)
END = T0 + timedelta(minutes=30)
SOURCE = InputSummary(
    source="test",
    rows=10,
    readings=9,
    batches=3,
    bad_rows={"no value": 1},
    rule_errors=0,
    event_time_reached=END,
)


def event(
    alert_id: str, kind: str, at: float, machine: str, rule: str = "r1", issue: str = "overheat"
) -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id,
        kind=AlertEventKind(kind),
        issue_type=issue,
        rule=rule,
        rule_version="v1",
        asset=AssetPath.parse(f"plant-a/stamping/line1/{machine}"),
        signal="bearing_temp",
        severity=Severity.HIGH,
        at=T0 + timedelta(seconds=at),
        evidence=Evidence(summary="s", condition="c"),
    )


LOG = [
    event("a", "raised", 0, "m1"),
    event("a", "cleared", 10, "m1"),
    event("b", "raised", 20, "m1"),
    event("b", "cleared", 25, "m1"),
    event("c", "raised", 40, "m1"),  # m1 raised 3 times within 40 s: chattering
    event("d", "raised", 700, "m2"),
    event("e", "raised", 1300, "m3", rule="r2", issue="pressure-loss"),
    event("e", "cleared", 1400, "m3", rule="r2", issue="pressure-loss"),
]


def truth(
    index: int, kind: str, machine: str, start: float, end: float | None, should_alert: bool = True
) -> TruthRecord:
    return TruthRecord(
        event=index,
        kind=kind,
        plant="plant-a",
        area="stamping",
        line="line1",
        machine=machine,
        signal="bearing_temp",
        protocol="opcua",
        start=T0 + timedelta(seconds=start),
        end=None if end is None else T0 + timedelta(seconds=end),
        start_s=start,
        end_s=end,
        severity="high",
        should_alert=should_alert,
    )


TRUTH = [
    truth(0, "excursion", "m1", 0, 50),  # detected by a at once; b and c are extra: false
    truth(1, "step", "m2", 690, 800),  # detected by d 10 s in
    truth(2, "drift", "m4", 100, 200),  # never alerted: missed
    truth(3, "excursion", "m1", 7200, 7300),  # after the period: not counted
]


def report(with_truth: bool = False) -> BacktestReport:
    return build_report(
        LOG,
        rules=["r1", "r2"],
        start=T0,
        end=END,
        source=SOURCE,
        truth=TRUTH if with_truth else None,
    )


def test_counts_per_rule_and_issue_type_and_every_event_in_time_order() -> None:
    made = report()
    assert (made.raised, made.cleared) == (5, 3)
    assert [(c.name, c.raised, c.cleared) for c in made.by_rule] == [("r1", 4, 2), ("r2", 1, 1)]
    assert [(c.name, c.raised) for c in made.by_issue_type] == [
        ("overheat", 4),
        ("pressure-loss", 1),
    ]
    assert [(a.alert_id, a.kind.value, a.machine) for a in made.alerts][:3] == [
        ("a", "raised", "m1"),
        ("a", "cleared", "m1"),
        ("b", "raised", "m1"),
    ]
    assert made.alerts[-1].at == T0 + timedelta(seconds=1400)
    assert made.truth is None


def test_alarm_load_over_the_period() -> None:
    load = report().alarm_load
    assert (load.alerts, load.windows_10min, load.per_10min_peak) == (5, 3, 3)
    assert load.per_10min_mean == pytest.approx(5 / 3)
    assert (load.flood_windows, load.flood_percent) == (0, 0.0)
    assert [(b.series, b.count, b.start) for b in load.chattering] == [
        ("plant-a/m1/bearing_temp r1", 3, T0)
    ]
    assert load.frequent == []  # 3 raises in 10 min is not more than 3
    assert [(a.series.split("/")[1], a.raised, a.share_percent) for a in load.bad_actors] == [
        ("m1", 3, 60.0),
        ("m2", 1, 20.0),
        ("m3", 1, 20.0),
    ]


def test_a_flood_is_more_than_ten_alerts_in_a_window() -> None:
    flood = [event(f"f{i}", "raised", 600 + i, f"m{i}") for i in range(11)]
    load = build_report(flood, rules=["r1"], start=T0, end=END, source=SOURCE).alarm_load
    assert (load.flood_windows, load.per_10min_peak) == (1, 11)
    assert load.flood_percent == pytest.approx(100 / 3)


def test_no_alert_is_zero_per_window_over_the_whole_period() -> None:
    load = build_report([], rules=["r1"], start=T0, end=END, source=SOURCE).alarm_load
    assert (load.alerts, load.windows_10min, load.per_10min_mean, load.bad_actors) == (
        0,
        3,
        0.0,
        [],
    )


def test_truth_gives_precision_recall_and_latency_percentiles() -> None:
    scored = report(with_truth=True).truth
    assert scored is not None
    overall = scored.overall
    assert (overall.events, overall.detected, overall.true_alerts, overall.false_alerts) == (
        3,
        2,
        2,
        3,
    )
    assert overall.precision == pytest.approx(0.4)
    assert overall.recall == pytest.approx(2 / 3)
    assert (overall.latency_p50_s, overall.latency_p90_s) == (5.0, 9.0)  # latencies 0 s and 10 s
    assert [(m.kind, m.where) for m in scored.missed] == [("drift", "plant-a/m4/bearing_temp")]
    assert {k.kind: k.recall for k in scored.kinds} == {"drift": 0.0, "excursion": 1.0, "step": 1.0}


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 50, None), ([7.0], 90, 7.0), ([0.0, 10.0], 90, 9.0), ([1.0, 2.0, 3.0, 4.0], 50, 2.5)],
)
def test_percentile_is_linear_between_ranks(
    values: list[float], q: float, expected: float | None
) -> None:
    assert percentile(values, q) == expected


def test_the_report_is_json_and_text() -> None:
    made = report(with_truth=True)
    again = BacktestReport.model_validate(json.loads(made.model_dump_json()))
    assert again == made
    text = "\n".join(format_report(made, listed=2))
    assert "10 rows, 9 readings in 3 batches; 1 bad rows not replayed (no value: 1)" in text
    assert "5 raised, 3 cleared" in text
    assert "  rule r1: 4 raised, 2 cleared" in text
    assert "... and 6 more events" in text
    assert (
        "chattering series (>= 3 raised within 60 s): 1, worst plant-a/m1/bearing_temp r1" in text
    )
    assert "all             precision 0.400, recall 0.667" in text
    assert "latency p50 5.0 s, p90 9.0 s" in text


RULE = """
- name: hot
  type: threshold
  issue_type: bearing-overtemperature
  signal: bearing_temp
  above: 90
"""


def test_rules_text_is_a_config_a_rules_mapping_or_a_bare_list() -> None:
    assert [r.name for r in config_from_text(RULE).rules] == ["hot"]
    mapping = "lateness_s: 0\nrules:\n" + RULE.replace("\n", "\n  ")
    config = config_from_text(mapping)
    assert (config.lateness_s, config.rules[0].name) == (0, "hot")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rules: [", "rules: not valid YAML"),
        ("42", "rules: <top level>: expected a mapping with a rules: list"),
        ("catalogue: /etc/passwd\nrules: []", "catalogue: not accepted here"),
        ("rules:\n" + RULE.replace("above: 90", "abov: 90").replace("\n", "\n  "), "rules[0]"),
        (RULE.replace("bearing-overtemperature", "nope"), "rules[0].issue_type: 'nope' is not"),
        ("name: ${HOME}\nrules: []", "name: unknown key"),
    ],
)
def test_rules_text_errors_name_the_key(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_text(text)
    assert problem in str(caught.value)


def test_truth_text_errors_name_the_line() -> None:
    good = json.dumps(TRUTH[0].to_json())
    assert parse_truth([good, "", good], "truth", TruthRecord)[1] == TRUTH[0]
    with pytest.raises(TruthFileError, match=r"truth:2: not a truth line: missing key 'kind'"):
        parse_truth([good, "{}"], "truth", TruthRecord)


def test_the_simulators_score_with_the_shared_code_and_keep_their_kind_defaults() -> None:
    from simulators import scoring
    from simulators import truth as sim_truth

    assert scoring.score is shared_score.score
    old = {k: v for k, v in TRUTH[0].to_json().items() if k != "should_alert"}
    assert sim_truth.TruthRecord.from_json({**old, "kind": "spikes"}).should_alert is False
    assert TruthRecord.from_json({**old, "kind": "spikes"}).should_alert is True  # unknown here
