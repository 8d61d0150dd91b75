"""Scorecard formulas on hand-made trails with answers worked out by hand."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from alerting.scorecards.facts import AlarmFacts, Interval, facts_of
from alerting.scorecards.formulas import Period, percentile, scorecard
from alerting.scorecards.settings import ScorecardSettings
from alerting.scorecards.table import csv_text, rows, text_table

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
HOUR = Period(T0, T0 + timedelta(hours=1))
ONE_POSITION = ScorecardSettings()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def alarm(opened: float, *, series: str = "s1", line: str = "line1", **kw: Any) -> AlarmFacts:
    return AlarmFacts(
        plant="plant-a",
        line=line,
        machine="mill-01",
        signal=series,
        rule="rule",
        priority=kw.pop("priority", "low"),
        opened_at=at(opened),
        **kw,
    )


def card(facts: list[AlarmFacts], settings: ScorecardSettings = ONE_POSITION) -> Any:
    return scorecard("plant-a", facts, HOUR, settings.position_of, settings.positions_of("plant-a"))


def test_load_per_position_and_time_in_flood() -> None:
    facts = [alarm(i, series=f"a{i}") for i in range(12)]  # 12 in the first 10 minutes
    facts += [alarm(1200 + i, series=f"b{i}") for i in range(3)]  # 3 in the third
    facts.append(alarm(-60, series="before"))  # opened before the period: not load
    made = card(facts)
    assert made.alarms == 15
    assert made.positions == 1
    assert made.alarms_per_position_hour == 15.0
    assert made.alarms_per_position_10min == 2.5
    assert made.peak_10min == 12
    assert made.flood_time_pct == pytest.approx(16.67)


def test_positions_share_the_load_by_line() -> None:
    settings = ScorecardSettings(positions={"plant-a": {"p1": ["line1"], "p2": ["*"]}})
    facts = [alarm(i, series=f"a{i}", line="line1") for i in range(10)]
    facts += [alarm(i, series=f"b{i}", line="line2") for i in range(5)]
    made = card(facts, settings)
    assert made.positions == 2
    assert made.alarms_per_position_hour == 7.5
    assert made.peak_10min == 10  # ten at one position: a flood there
    assert made.flood_time_pct == pytest.approx(8.33)  # 1 of 2 x 6 windows
    assert settings.position_of("plant-b", "line1") == "plant-b"


def test_a_plant_without_alarms_has_no_load_and_no_shares() -> None:
    made = card([])
    assert (made.alarms, made.peak_10min, made.flood_time_pct) == (0, 0, 0.0)
    assert made.tta_p50_s is None
    assert made.acked_in_time_pct is None
    assert made.bad_actor_pct is None
    assert made.priority_deviation_pts is None


def test_chattering_is_three_raises_of_a_series_within_60_s() -> None:
    facts = [alarm(t, series="x") for t in (0, 20, 50)]
    facts += [alarm(t, series="y") for t in (0, 40, 100)]
    made = card(facts)
    assert made.chattering_series == 1
    assert made.chattering_alarms_pct == 50.0


def test_stale_means_active_over_24_hours_inside_the_period() -> None:
    day = 24 * 3600
    facts = [
        alarm(-day - 3600, series="a"),  # never cleared: stale all period
        alarm(-day + 1800, series="b", cleared_at=at(1200)),  # cleared 10 min too early
        alarm(-day + 1800, series="c", cleared_at=at(2400)),  # 24 h reached at 30 min
    ]
    made = card(facts)
    assert made.stale_alarms == 2
    assert made.alarms == 0


def test_priority_distribution_against_80_15_5() -> None:
    facts = [alarm(i, series=f"s{i}") for i in range(8)]
    facts += [alarm(8, series="m", priority="medium"), alarm(9, series="c", priority="critical")]
    made = card(facts)
    assert made.priority_pct == {"low": 80.0, "medium": 10.0, "high": 10.0}
    assert made.priority_deviation_pts == 10.0


def test_bad_actors_are_the_ten_busiest_series() -> None:
    facts = [alarm(i * 120, series="worst") for i in range(10)]
    facts += [alarm(i, series=f"other{i}") for i in range(11)]
    made = card(facts)
    assert made.bad_actor_pct == pytest.approx(100 * 19 / 21, abs=0.01)


def test_response_times_and_acknowledged_within_the_policy_time() -> None:
    facts = [
        alarm(0, series="a", answered_at=at(10), closed_at=at(100), annunciated=True),
        alarm(0, series="b", answered_at=at(20), closed_at=at(200), annunciated=True),
        alarm(0, series="c", answered_at=at(30), annunciated=True, ack_within_s=60),
        alarm(
            0,
            series="d",
            answered_at=at(90),
            annunciated=True,
            ack_within_s=60,
            escalated_at=at(60),
        ),
        alarm(0, series="e", annunciated=True, ack_within_s=60, escalated_at=at(60)),
        alarm(0, series="f", answered_at=at(40)),  # nobody was told: not in the shares
    ]
    made = card(facts)
    assert made.tta_p50_s == 30.0  # 10, 20, 30, 40, 90
    assert made.tta_p90_s == 70.0
    assert made.ttr_p50_s == 150.0
    assert made.acked_in_time_pct == pytest.approx(33.33)  # c of c, d, e
    assert made.escalated_pct == 40.0  # d, e of five annunciated


def test_shelving_counts_what_began_and_the_time_inside_the_period() -> None:
    facts = [
        alarm(-900, series="a", shelvings=(Interval(at(-600), at(300)),)),
        alarm(0, series="b", shelvings=(Interval(at(3000), None),)),
    ]
    made = card(facts)
    assert made.shelvings == 1
    assert made.shelved_s == 900.0  # 300 s + the last 600 s, still shelved at the end


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 90) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([10.0, 20.0, 30.0, 40.0, 50.0], 90) == 46.0


def entry(seconds: float, action: str, to_state: str, **details: Any) -> SimpleNamespace:
    return SimpleNamespace(at=at(seconds), action=action, to_state=to_state, details=details)


def test_facts_come_from_the_trail() -> None:
    row = SimpleNamespace(
        plant="plant-a",
        line="line1",
        machine="mill-01",
        signal="vib",
        rule="r",
        priority="high",
        opened_at=T0,
        closed_at=at(400),
        escalation_policy="standard",
    )
    trail = [
        entry(0, "raise", "active_unacknowledged", hidden=False),
        entry(60, "escalate", "active_unacknowledged", level=2, hidden=False),
        entry(100, "shelve", "active_unacknowledged", hidden=True),
        entry(150, "comment", "active_unacknowledged", hidden=True),
        entry(200, "clear", "returned_unacknowledged", hidden=False),  # one-shot ends
        entry(300, "acknowledge", "normal", hidden=False),
    ]
    deadlines: dict[str, float] = {"standard": 120.0}
    facts = facts_of(row, trail, deadlines.get)
    assert facts.escalated_at == at(60)
    assert facts.answered_at == at(300)
    assert facts.cleared_at == at(200)
    assert facts.closed_at == at(400)
    assert facts.shelvings == (Interval(at(100), at(200)),)
    assert (facts.annunciated, facts.ack_within_s) == (True, 120.0)
    none: dict[str, float] = {}
    unknown = facts_of(row, trail, none.get)
    assert unknown.ack_within_s is None


def test_a_first_level_notice_is_not_an_escalation() -> None:
    row = SimpleNamespace(
        plant="p", line="l", machine="m", signal="s", rule="r", priority="low",
        opened_at=T0, closed_at=None, escalation_policy=None,
    )  # fmt: skip
    trail = [entry(0, "raise", "active_unacknowledged"), entry(5, "escalate", "x", level=1)]
    none: dict[str, float] = {}
    facts = facts_of(row, trail, none.get)
    assert facts.escalated_at is None
    assert facts.annunciated is False


def test_the_table_marks_the_worst_plant_of_each_row() -> None:
    fast = alarm(0, answered_at=at(10), annunciated=True, ack_within_s=60)
    slow = replace(fast, plant="plant-b", answered_at=at(300))
    a = scorecard("plant-a", [fast], HOUR, ONE_POSITION.position_of)
    b = scorecard("plant-b", [slow], HOUR, ONE_POSITION.position_of)
    a.completeness_pct, b.completeness_pct = 99.5, 100.0
    table = {row.figure.key: row for row in rows([a, b])}
    assert table["tta_p50"].worst == [False, True]
    assert table["in_time"].worst == [False, True]
    assert table["completeness"].worst == [True, False]
    assert table["alarms"].worst == [False, False]  # equal: nobody is worst
    text = text_table([a, b])
    assert "300 s *" in text
    assert "99.5% *" in text
    parsed = list(csv.reader(io.StringIO(csv_text([a, b]))))
    assert parsed[0][:5] == ["figure", "key", "unit", "plant-a", "plant-a worst"]
    tta = next(r for r in parsed if r[1] == "tta_p50")
    assert tta[3:] == ["10.0", "", "300.0", "yes"]


def test_a_period_must_move_forward() -> None:
    with pytest.raises(ValueError, match="must end after"):
        Period(T0, T0)
    assert [p.start for p in HOUR.split(3)] == [at(0), at(1200), at(2400)]
