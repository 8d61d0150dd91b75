"""Scoring an alert log against ground truth: precision, recall and detection latency per kind
of injected event (`plantmesh sim score`).

Matching rule. Only `raised` alert events count (a `cleared` one ends an alert, it detects
nothing). A raised alert matches a truth event when
- its asset's plant and machine are the event's plant and machine,
- its signal is the event's signal (an event without a signal, a server event, matches any
  signal of the machine), and
- its `at` (event time, when the condition was met) lies in [start, end + grace]; an event
  without an end runs to the last alert of the log. `grace` (default 60 s) leaves room for
  on-delays and for detectors that need a little history after the event ended.
An event is detected if at least one alert matches it; its latency is the earliest matching
alert's `at` minus the event's start. An alert that matches events of several kinds counts
for each of them.

Per kind: recall = detected events / events; precision = alerts matching an event of the kind
/ (those + false alerts on the kind's signals), a false alert being one that matches no event
at all, counted against every kind that has an event on the same plant, machine and signal
(machine-wide events: any signal). Overall: precision = alerts matching any event / all raised
alerts; recall = detected events / all events.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from plantmesh.contracts import AlertEvent
from plantmesh.contracts.alerts import AlertEventKind
from plantmesh.contracts.decoding import DecodeError, decode
from simulators.truth import TruthRecord

DEFAULT_GRACE = timedelta(seconds=60)


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


def matches(alert: AlertEvent, event: TruthRecord, last: datetime, grace: timedelta) -> bool:
    end = event.end if event.end is not None else last
    return (
        alert.asset.plant == event.plant
        and alert.asset.machine == event.machine
        and (event.signal is None or alert.signal == event.signal)
        and event.start <= alert.at <= end + grace
    )


@dataclass
class KindScore:
    kind: str
    events: int = 0
    detected: int = 0
    true_alerts: int = 0
    false_alerts: int = 0
    latencies_s: list[float] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.detected / self.events if self.events else None

    @property
    def precision(self) -> float | None:
        raised = self.true_alerts + self.false_alerts
        return self.true_alerts / raised if raised else None

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
            "detected": self.detected,
            "recall": self.recall,
            "true_alerts": self.true_alerts,
            "false_alerts": self.false_alerts,
            "precision": self.precision,
            "latency_mean_s": self.latency("mean"),
            "latency_median_s": self.latency("median"),
            "latency_max_s": self.latency("max"),
        }


@dataclass
class Score:
    kinds: dict[str, KindScore]
    overall: KindScore
    missed: list[TruthRecord]
    false_alerts: list[AlertEvent]

    def to_json(self) -> dict[str, Any]:
        return {
            "kinds": [k.to_json() for k in self.kinds.values()],
            "overall": self.overall.to_json(),
            "missed": [t.to_json() for t in self.missed],
            "false_alerts": [a.model_dump(mode="json") for a in self.false_alerts],
        }


def score(
    alerts: list[AlertEvent], truth: list[TruthRecord], grace: timedelta = DEFAULT_GRACE
) -> Score:
    raised = [a for a in alerts if a.kind == AlertEventKind.RAISED]
    last = max((a.at for a in raised), default=datetime.max.replace(tzinfo=UTC))
    kinds: dict[str, KindScore] = {}
    overall = KindScore("all")
    matched: dict[int, set[str]] = defaultdict(set)  # alert index -> kinds it detects
    missed = []
    for event in truth:
        kind = kinds.setdefault(event.kind, KindScore(event.kind))
        kind.events += 1
        overall.events += 1
        hits = [i for i, a in enumerate(raised) if matches(a, event, last, grace)]
        for i in hits:
            matched[i].add(event.kind)
        if not hits:
            missed.append(event)
            continue
        first = min(raised[i].at for i in hits)
        latency = (first - event.start).total_seconds()
        for target in (kind, overall):
            target.detected += 1
            target.latencies_s.append(latency)
    false_alerts = []
    for i, alert in enumerate(raised):
        if i in matched:
            overall.true_alerts += 1
            for name in matched[i]:
                kinds[name].true_alerts += 1
            continue
        false_alerts.append(alert)
        overall.false_alerts += 1
        concerned = {
            event.kind
            for event in truth
            if (event.plant, event.machine) == (alert.asset.plant, alert.asset.machine)
            and event.signal in (None, alert.signal)
        }
        for name in concerned:
            kinds[name].false_alerts += 1
    return Score(dict(sorted(kinds.items())), overall, missed, false_alerts)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_score(result: Score) -> str:
    header = (
        f"{'kind':<15} {'events':>6} {'detected':>8} {'recall':>6} {'alerts':>6} "
        f"{'false':>5} {'precision':>9} {'latency s (mean/median/max)':>28}"
    )
    lines = [header, "-" * len(header)]
    for row in [*result.kinds.values(), result.overall]:
        latency = "/".join(_seconds(row.latency(w)) for w in ("mean", "median", "max"))
        lines.append(
            f"{row.kind:<15} {row.events:>6} {row.detected:>8} {_ratio(row.recall):>6} "
            f"{row.true_alerts:>6} {row.false_alerts:>5} {_ratio(row.precision):>9} "
            f"{latency:>28}"
        )
    for event in result.missed:
        where = f"{event.plant}/{event.machine}/{event.signal or '*'}"
        lines.append(f"missed: {event.kind} on {where} from {event.start.isoformat()}")
    for alert in result.false_alerts:
        lines.append(
            f"false alert: {alert.rule} on {alert.asset.plant}/{alert.asset.machine}/"
            f"{alert.signal} at {alert.at.isoformat()}"
        )
    return "\n".join(lines)


def dump_score(result: Score) -> str:
    return json.dumps(result.to_json(), indent=2)
