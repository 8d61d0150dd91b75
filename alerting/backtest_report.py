"""What a backtest found, as one model an API can return and a terminal can print: the alert
events the rules would have given (counts per rule and issue type, and each event), the
ISA-18.2 alarm-load figures of the run, and with a simulator's truth, precision, recall and
detection latency. Pure: events and truth in, report out (plantmesh.scoring counts the way
`plantmesh sim score` does).

Alarm load is over the backtest's own period [start, end): 10-minute windows from `start`.
Truth scoring keeps the truth's events that overlap the period (an event outside it had no
data replayed); an event that began before `start` is timed from its own start."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel

from plantmesh.contracts import AlertEvent, AlertEventKind
from plantmesh.scoring.alarm_figures import FLOOD_ABOVE, WINDOW, Burst, isa_figures
from plantmesh.scoring.matching import Episode, episodes
from plantmesh.scoring.score import DEFAULT_GRACE, KindScore, score
from plantmesh.scoring.truth import TruthRecord, iso_utc

BAD_ACTORS = 10  # ISA-18.2's usual "top 10 most frequent alarms"
LISTED_MISSED = 50


class Count(BaseModel):
    name: str
    raised: int
    cleared: int


class AlertLine(BaseModel):
    at: datetime
    kind: AlertEventKind
    rule: str
    issue_type: str
    severity: str
    plant: str
    area: str
    line: str
    machine: str
    signal: str
    machine_class: str | None
    alert_id: str


class SeriesBurst(BaseModel):
    """`count` raises of one series (plant/machine/signal rule) from `start`."""

    series: str
    count: int
    start: datetime


class BadActor(BaseModel):
    series: str
    raised: int
    share_percent: float


class AlarmLoad(BaseModel):
    alerts: int
    windows_10min: int
    per_10min_mean: float
    per_10min_peak: int
    flood_threshold: int = FLOOD_ABOVE
    flood_windows: int
    flood_percent: float
    chattering: list[SeriesBurst]
    frequent: list[SeriesBurst]
    bad_actors: list[BadActor]


class Detection(BaseModel):
    """Precision, recall and latency over one kind of injected event (or all: kind `all`)."""

    kind: str
    events: int
    should_alert: int
    detected: int
    true_alerts: int
    false_alerts: int
    precision: float | None
    recall: float | None
    f1: float | None
    latency_p50_s: float | None
    latency_p90_s: float | None


class MissedEvent(BaseModel):
    kind: str
    where: str
    start: datetime


class TruthResult(BaseModel):
    grace_s: float
    overall: Detection
    kinds: list[Detection]
    missed: list[MissedEvent]


class InputSummary(BaseModel):
    source: str
    rows: int
    readings: int
    batches: int
    bad_rows: dict[str, int]
    rule_errors: int
    event_time_reached: datetime | None


class BacktestReport(BaseModel):
    rules: list[str]
    start: datetime
    end: datetime
    input: InputSummary
    raised: int
    cleared: int
    by_rule: list[Count]
    by_issue_type: list[Count]
    alerts: list[AlertLine]
    alarm_load: AlarmLoad
    truth: TruthResult | None = None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile, linear between the two nearest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def counts(events: Iterable[AlertEvent], attribute: str) -> list[Count]:
    found: Counter[tuple[str, AlertEventKind]] = Counter()
    for event in events:
        found[getattr(event, attribute), event.kind] += 1
    names = sorted({name for name, _ in found})
    return [
        Count(
            name=name,
            raised=found[name, AlertEventKind.RAISED],
            cleared=found[name, AlertEventKind.CLEARED],
        )
        for name in names
    ]


def alert_line(event: AlertEvent) -> AlertLine:
    asset = event.asset
    return AlertLine(
        at=event.at,
        kind=event.kind,
        rule=event.rule,
        issue_type=event.issue_type,
        severity=event.severity.value,
        plant=asset.plant,
        area=asset.area,
        line=asset.line,
        machine=asset.machine,
        signal=event.signal,
        machine_class=event.machine_class,
        alert_id=event.alert_id,
    )


def _bursts(found: list[Burst]) -> list[SeriesBurst]:
    return [SeriesBurst(series=b.series, count=b.count, start=b.start) for b in found]


def alarm_load(found: list[Episode], start: datetime, end: datetime) -> AlarmLoad:
    """ISA-18.2 figures of the episodes over [start, end)."""
    windows = max(1, math.ceil((end - start) / WINDOW))
    # isa_figures counts windows up to its `until` inclusive: the period's last instant.
    figures = isa_figures(found, start, end - timedelta(microseconds=1))
    windows = max(windows, figures.windows)  # alerts after `end` (the final advance) widen it
    by_series = Counter(episode.series for episode in found)
    total = len(found)
    return AlarmLoad(
        alerts=total,
        windows_10min=windows,
        per_10min_mean=total / windows,
        per_10min_peak=figures.peak,
        flood_windows=figures.flood_windows,
        flood_percent=100.0 * figures.flood_windows / windows,
        chattering=_bursts(figures.chattering),
        frequent=_bursts(figures.frequent),
        bad_actors=[
            BadActor(series=series, raised=raised, share_percent=100.0 * raised / total)
            for series, raised in sorted(by_series.items(), key=lambda kv: (-kv[1], kv[0]))[
                :BAD_ACTORS
            ]
        ],
    )


def _detection(row: KindScore) -> Detection:
    return Detection(
        kind=row.kind,
        events=row.events,
        should_alert=row.should_alert,
        detected=row.detected,
        true_alerts=row.true_alerts,
        false_alerts=row.false_alerts,
        precision=row.precision,
        recall=row.recall,
        f1=row.f1,
        latency_p50_s=percentile(row.latencies_s, 50),
        latency_p90_s=percentile(row.latencies_s, 90),
    )


def in_period(truth: Iterable[TruthRecord], start: datetime, end: datetime) -> list[TruthRecord]:
    """The truth's events that overlap [start, end)."""
    return [t for t in truth if t.start < end and (t.end is None or t.end >= start)]


def truth_result(
    events: list[AlertEvent],
    truth: Sequence[TruthRecord],
    start: datetime,
    end: datetime,
    grace: timedelta = DEFAULT_GRACE,
) -> TruthResult:
    result = score(events, in_period(truth, start, end), grace)
    return TruthResult(
        grace_s=grace.total_seconds(),
        overall=_detection(result.overall),
        kinds=[_detection(row) for row in result.kinds.values()],
        missed=[
            MissedEvent(kind=e.kind, where=e.where, start=e.start)
            for e in result.missed[:LISTED_MISSED]
        ],
    )


def build_report(
    events: list[AlertEvent],
    *,
    rules: list[str],
    start: datetime,
    end: datetime,
    source: InputSummary,
    truth: Sequence[TruthRecord] | None = None,
    grace: timedelta = DEFAULT_GRACE,
) -> BacktestReport:
    ordered = sorted(events, key=lambda e: e.at)  # stable: the engine's order among equal times
    kinds = Counter(event.kind for event in events)
    return BacktestReport(
        rules=rules,
        start=start,
        end=end,
        input=source,
        raised=kinds[AlertEventKind.RAISED],
        cleared=kinds[AlertEventKind.CLEARED],
        by_rule=counts(events, "rule"),
        by_issue_type=counts(events, "issue_type"),
        alerts=[alert_line(event) for event in ordered],
        alarm_load=alarm_load(episodes(events), start, end),
        truth=None if truth is None else truth_result(events, truth, start, end, grace),
    )


# --- text ---------------------------------------------------------------------------------------
def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _worst(bursts: list[SeriesBurst]) -> str:
    if not bursts:
        return "none"
    worst = bursts[0]
    return f"{len(bursts)}, worst {worst.series}: {worst.count} from {iso_utc(worst.start)}"


def _load_lines(load: AlarmLoad) -> list[str]:
    lines = [
        f"alarm load (ISA-18.2): {load.alerts} alerts over {load.windows_10min} 10-min windows, "
        f"{load.per_10min_mean:.2f} per 10 min on average (target ~1), "
        f"peak {load.per_10min_peak} (target <= {load.flood_threshold})",
        f"  floods (> {load.flood_threshold} in 10 min): {load.flood_windows} windows, "
        f"{load.flood_percent:.1f} % of the time (target < 1 %)",
        f"  chattering series (>= 3 raised within 60 s): {_worst(load.chattering)}",
        f"  series raising > 3 times in 10 min: {_worst(load.frequent)}",
    ]
    if load.bad_actors:
        lines.append("  top bad actors:")
        lines.extend(
            f"    {a.raised:>5}  {a.share_percent:5.1f} %  {a.series}" for a in load.bad_actors
        )
    return lines


def _truth_lines(truth: TruthResult) -> list[str]:
    lines = []
    for row in [truth.overall, *truth.kinds]:
        lines.append(
            f"  {row.kind:<15} precision {_ratio(row.precision)}, recall {_ratio(row.recall)}"
            f" ({row.detected} of {row.should_alert} detected, {row.true_alerts} true, "
            f"{row.false_alerts} false), latency p50 {_seconds(row.latency_p50_s)}, "
            f"p90 {_seconds(row.latency_p90_s)}"
        )
    lines.extend(f"  missed: {m.kind} on {m.where} from {iso_utc(m.start)}" for m in truth.missed)
    return [f"against the truth (grace {truth.grace_s:g} s):", *lines]


def format_report(report: BacktestReport, listed: int = 50) -> list[str]:
    """The report as lines of text; at most `listed` alert events (--json has them all)."""
    source = report.input
    bad = sum(source.bad_rows.values())
    lines = [
        f"backtest of {len(report.rules)} rule(s) over "
        f"{iso_utc(report.start)} .. {iso_utc(report.end)} from {source.source}",
        f"{source.rows} rows, {source.readings} readings in {source.batches} batches"
        + (
            f"; {bad} bad rows not replayed ("
            + ", ".join(f"{reason}: {n}" for reason, n in sorted(source.bad_rows.items()))
            + ")"
            if bad
            else ""
        ),
        f"{report.raised} raised, {report.cleared} cleared"
        + (f"; {source.rule_errors} rule error(s), see the log" if source.rule_errors else ""),
    ]
    for title, rows in (("rule", report.by_rule), ("issue type", report.by_issue_type)):
        lines.extend(f"  {title} {c.name}: {c.raised} raised, {c.cleared} cleared" for c in rows)
    lines.extend(
        f"  {iso_utc(a.at)} {a.kind.value:<7} {a.rule} on {a.plant}/{a.machine}/{a.signal}"
        for a in report.alerts[:listed]
    )
    if len(report.alerts) > listed:
        lines.append(f"  ... and {len(report.alerts) - listed} more events (--json, --out)")
    lines.extend(_load_lines(report.alarm_load))
    if report.truth is not None:
        lines.extend(_truth_lines(report.truth))
    return lines
