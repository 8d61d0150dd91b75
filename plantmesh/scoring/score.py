"""Scoring an alert log against ground truth (`plantmesh sim score`, alerting's backtests): precision, recall, F1 and
detection latency, overall and per kind of injected event, beside the alarm-load figures of
ISA-18.2 (plantmesh.scoring.alarm_figures).

What is counted (plantmesh.scoring.matching has the exact rules):
- an alert is an episode, one alert_id from raised to cleared; an event is one injected event
  (a PLC restart written as one truth line per machine is one event);
- pairing is one to one: an event that should alert is detected by at most one episode (the
  earliest in its window [start, end + grace], `grace` default 60 s for on-delays), an episode
  detects at most one event;
- a true alert is an episode that detected an event. Every other episode is a false alert: a
  second or tenth episode in an event's window, an alert where nothing happened, and an alert on
  an event that should not alert (a harmless event, `should_alert` false in the truth), which is
  also reported as "paged on harmless";
- recall counts only the events that should alert; a harmless event nobody paged on is neither a
  miss nor a false alert.

Overall: precision = true alerts / all episodes; recall = detected events / events that should
alert; F1 = 2 TP / (2 TP + FP + FN). Per kind: events, harmless events, detected, recall, true
alerts, false alerts (episodes paired with nothing that should alert, on a series where the kind
had an event: plant, machine and signal, any signal for a machine-wide event; one false alert can
count against several kinds), precision, latency.

Latency is the detecting episode's `at` (event time, when the rule's condition was met) minus the
event's start: detection latency in source time. Publication latency (until the alert is on
Kafka) needs the alert's publication time, which the alert log does not carry yet.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from plantmesh.contracts import AlertEvent
from plantmesh.contracts.decoding import DecodeError, decode
from plantmesh.scoring.alarm_figures import IsaFigures, format_isa, isa_figures
from plantmesh.scoring.matching import Episode, Event, Pairing, episodes, group_events, pair
from plantmesh.scoring.truth import TruthRecord, iso_utc

DEFAULT_GRACE = timedelta(seconds=60)
LISTED = 20  # false alerts listed under the table (--json lists them all)


class AlertLogError(ValueError):
    """A line of the alert log that is not an AlertEvent."""


def read_alerts(path: Path | str) -> list[AlertEvent]:
    alerts = []
    with Path(path).open(encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                alerts.append(decode(AlertEvent, line))
            except DecodeError as exc:
                raise AlertLogError(f"{path}:{number}: {exc}") from None
    return alerts


@dataclass
class KindScore:
    kind: str
    events: int = 0
    harmless: int = 0  # events that should not alert
    detected: int = 0  # events that should alert and did
    paged: int = 0  # harmless events that got alerts
    true_alerts: int = 0
    false_alerts: int = 0
    latencies_s: list[float] = field(default_factory=list)

    @property
    def should_alert(self) -> int:
        return self.events - self.harmless

    @property
    def recall(self) -> float | None:
        return self.detected / self.should_alert if self.should_alert else None

    @property
    def precision(self) -> float | None:
        raised = self.true_alerts + self.false_alerts
        return self.true_alerts / raised if raised else None

    @property
    def f1(self) -> float | None:
        """2 TP / (2 TP + FP + FN); None when there is nothing to count."""
        missed = self.should_alert - self.detected
        counted = 2 * self.true_alerts + self.false_alerts + missed
        return 2 * self.true_alerts / counted if counted else None

    def latency(self, which: str) -> float | None:
        if not self.latencies_s:
            return None
        if which == "median":
            return statistics.median(self.latencies_s)
        if which == "max":
            return max(self.latencies_s)
        return statistics.fmean(self.latencies_s)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "events": self.events,
            "harmless_events": self.harmless,
            "detected": self.detected,
            "paged_on_harmless": self.paged,
            "recall": self.recall,
            "true_alerts": self.true_alerts,
            "false_alerts": self.false_alerts,
            "precision": self.precision,
            "f1": self.f1,
            "latency_mean_s": self.latency("mean"),
            "latency_median_s": self.latency("median"),
            "latency_max_s": self.latency("max"),
        }


@dataclass
class Paged:
    """A harmless event and the alerts raised on it (all false)."""

    event: Event
    alerts: list[AlertEvent]

    def to_json(self) -> dict[str, Any]:
        return {
            **self.event.to_json(),
            "alerts": [a.model_dump(mode="json") for a in self.alerts],
        }


@dataclass
class Score:
    kinds: dict[str, KindScore]
    overall: KindScore
    missed: list[Event]  # events that should alert and were not detected
    false_alerts: list[AlertEvent]  # the raised event of every false episode
    paged: list[Paged] = field(default_factory=list)
    isa: IsaFigures = field(default_factory=IsaFigures)

    def to_json(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_json(),
            "kinds": [k.to_json() for k in self.kinds.values()],
            "isa_18_2": self.isa.to_json(),
            "missed": [e.to_json() for e in self.missed],
            "paged_on_harmless": [p.to_json() for p in self.paged],
            "false_alerts": [a.model_dump(mode="json") for a in self.false_alerts],
        }


def _count_events(events: list[Event], pairing: Pairing, found: list[Episode]) -> Score:
    kinds: dict[str, KindScore] = {}
    overall = KindScore("all")
    missed: list[Event] = []
    paged: list[Paged] = []
    for i, event in enumerate(events):
        rows = (kinds.setdefault(event.kind, KindScore(event.kind)), overall)
        detector = pairing.detected_by.get(i)
        for row in rows:
            row.events += 1
            row.harmless += not event.should_alert
            row.paged += i in pairing.paged
        if i in pairing.paged:
            paged.append(Paged(event, [found[j].alert for j in pairing.paged[i]]))
        if detector is None:
            if event.should_alert:
                missed.append(event)
            continue
        latency = (found[detector].raised - event.start).total_seconds()
        for row in rows:
            row.detected += 1
            row.true_alerts += 1
            row.latencies_s.append(latency)
    return Score(dict(sorted(kinds.items())), overall, missed, [], paged)


def _count_false(
    result: Score, events: list[Event], pairing: Pairing, found: list[Episode]
) -> None:
    true = pairing.true_episodes()
    for j, episode in enumerate(found):
        if j in true:
            continue
        result.false_alerts.append(episode.alert)
        result.overall.false_alerts += 1
        for kind in {e.kind for e in events if e.on_series(episode)}:
            result.kinds[kind].false_alerts += 1


def _run_span(truth: Sequence[TruthRecord]) -> tuple[datetime | None, datetime | None]:
    """The run's tick 0 and the last event end the truth knows of."""
    origin = min((t.start - timedelta(seconds=t.start_s) for t in truth), default=None)
    until = max((t.end or t.start for t in truth), default=None)
    return origin, until


def score(
    alerts: list[AlertEvent], truth: Sequence[TruthRecord], grace: timedelta = DEFAULT_GRACE
) -> Score:
    found = episodes(alerts)
    events = group_events(truth)
    pairing = pair(events, found, grace)
    result = _count_events(events, pairing, found)
    _count_false(result, events, pairing, found)
    result.isa = isa_figures(found, *_run_span(truth))
    return result


def _ratio(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _table(result: Score) -> list[str]:
    header = (
        f"{'kind':<15} {'events':>6} {'harmless':>8} {'detected':>8} {'recall':>6} "
        f"{'alerts':>6} {'false':>5} {'precision':>9} {'latency s (mean/median/max)':>28}"
    )
    lines = [header, "-" * len(header)]
    for row in [*result.kinds.values(), result.overall]:
        latency = "/".join(_seconds(row.latency(w)) for w in ("mean", "median", "max"))
        lines.append(
            f"{row.kind:<15} {row.events:>6} {row.harmless:>8} {row.detected:>8} "
            f"{_ratio(row.recall):>6} {row.true_alerts:>6} {row.false_alerts:>5} "
            f"{_ratio(row.precision):>9} {latency:>28}"
        )
    return lines


def _headline(overall: KindScore) -> str:
    episodes_count = overall.true_alerts + overall.false_alerts
    return (
        f"overall: precision {_ratio(overall.precision, 3)}, recall {_ratio(overall.recall, 3)}, "
        f"F1 {_ratio(overall.f1, 3)} ({overall.detected} of {overall.should_alert} events that "
        f"should alert detected, {overall.true_alerts} of {episodes_count} alerts true, "
        f"{overall.paged} of {overall.harmless} harmless events paged on)"
    )


def _listing(result: Score) -> list[str]:
    lines = []
    for event in result.missed:
        lines.append(f"missed: {event.kind} on {event.where} from {iso_utc(event.start)}")
    for paged in result.paged:
        event = paged.event
        lines.append(
            f"paged on harmless: {event.kind} on {event.where} from {iso_utc(event.start)} "
            f"({len(paged.alerts)} alerts)"
        )
    for alert in result.false_alerts[:LISTED]:
        lines.append(
            f"false alert: {alert.rule} on {alert.asset.plant}/{alert.asset.machine}/"
            f"{alert.signal} at {iso_utc(alert.at)}"
        )
    if len(result.false_alerts) > LISTED:
        lines.append(f"... and {len(result.false_alerts) - LISTED} more false alerts (--json)")
    return lines


def format_score(result: Score) -> str:
    return "\n".join(
        [
            _headline(result.overall),
            *format_isa(result.isa),
            "",
            *_table(result),
            *_listing(result),
        ]
    )


def dump_score(result: Score) -> str:
    return json.dumps(result.to_json(), indent=2)
