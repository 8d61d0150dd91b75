"""The step-by-step part of `plantmesh alerting explain`: what the rule decided at each reading
of the alert's series, and at each event-time tick, as rows, then as compressed text lines.

Rules built on Episodes report their decisions through its tracer hook (TraceStep): every
Episodes instance of the rule is found and traced. The threshold rule keeps its own state
machine; its phase is read from its series state before and after each step (a probe)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from itertools import groupby

from alerting.evidence import iso, num
from alerting.rules import Rule, ThresholdRule
from alerting.rules.base import is_bad
from alerting.rules.episodes import CLEARED, NORMAL, Episodes, TraceStep
from plantmesh.contracts import Reading

COMPRESS_FROM = 3
"""Runs of this many identical steps (no phase change) or more print as one line."""


@dataclass(frozen=True, slots=True)
class Row:
    """One decision on the alert's series: at a reading (`value` set) or at an event-time tick."""

    ts: datetime
    value: str | None
    holds: bool | None
    before: str
    after: str
    track: str = ""
    """Which episode life of the rule decided, when it has several (e.g. zone C and D)."""
    note: str = ""

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def same_kind(self) -> tuple[bool, bool | None, str, str, str, str]:
        return (self.value is None, self.holds, self.before, self.after, self.track, self.note)


def find_episodes(holder: object, prefix: str = "", depth: int = 2) -> dict[str, Episodes]:
    """The Episodes of a rule, by attribute path (`rising`, `zone_c`, `flows.episodes`, ...):
    its attributes, the values of its dicts, and the attributes of its own helper objects."""
    found: dict[str, Episodes] = {}
    for name, value in sorted(vars(holder).items()):
        label = f"{prefix}{name.lstrip('_')}"
        if isinstance(value, Episodes):
            found[label] = value
        elif isinstance(value, dict):
            items = ((f"{label}[{k}]", v) for k, v in value.items())
            found |= {key: item for key, item in items if isinstance(item, Episodes)}
        elif depth > 1 and _helper(value):
            found |= find_episodes(value, f"{label}.", depth - 1)
    return found


def _helper(value: object) -> bool:
    """An object of the rules' own modules with attributes (a rule's part, not data)."""
    return type(value).__module__.startswith("alerting.rules") and hasattr(value, "__dict__")


@dataclass
class Recorder:
    """Collects the rows of one series (`series_key`) while a replay runs: call `reading`
    around each reading of the series and `tick` around each advance of event time."""

    rule: Rule
    series_key: str
    rows: list[Row] = field(default_factory=list)
    _reading: Reading | None = None
    _steps: int = 0
    _tracks: dict[str, Episodes] = field(default_factory=dict)
    _probe: Callable[[], str] | None = None

    def __post_init__(self) -> None:
        self._tracks = find_episodes(self.rule)
        for label, episodes in self._tracks.items():
            episodes.trace = partial(self._on_step, label if len(self._tracks) > 1 else "")
        if not self._tracks and isinstance(self.rule, ThresholdRule):
            self._probe = partial(_threshold_phase, self.rule, self.series_key)

    @property
    def traced(self) -> bool:
        return bool(self._tracks) or self._probe is not None

    def detach(self) -> None:
        for episodes in self._tracks.values():
            episodes.trace = None

    def reading(self, reading: Reading, decide: Callable[[], object]) -> None:
        """Run `decide` (the engine processing `reading`) and record what it decided."""
        self._reading, self._steps = reading, 0
        before = self._phase()
        decide()
        self._reading = None
        if self._probe is not None:
            after = _cleared_if_ended(before, self._probe())
            holds = None if is_bad(reading) else after not in (NORMAL, CLEARED)
            note = "ignored: bad quality" if is_bad(reading) else ""
            self.rows.append(
                Row(reading.source_ts, _value(reading), holds, before, after, "", note)
            )
        elif self._steps == 0:
            note = "ignored: bad quality" if is_bad(reading) else "no decision"
            self.rows.append(
                Row(reading.source_ts, _value(reading), None, before, before, "", note)
            )

    def tick(self, watermark: datetime, decide: Callable[[], object]) -> None:
        """Run `decide` (an advance of event time to `watermark`) and record its decisions."""
        before = self._phase()
        decide()
        if self._probe is not None:
            after = _cleared_if_ended(before, self._probe())
            if after != before:
                self.rows.append(Row(watermark, None, None, before, after, "", "by time alone"))

    def _phase(self) -> str:
        if self._probe is not None:
            return self._probe()
        phases = (episodes.phase(self.series_key) for episodes in self._tracks.values())
        return next((phase for phase in phases if phase != NORMAL), NORMAL)

    def _on_step(self, track: str, step: TraceStep) -> None:
        if step.subject.series_key != self.series_key and step.key != self.series_key:
            return
        self._steps += 1
        reading = self._reading
        value = None if reading is None else _value(reading)
        note = "" if step.holds is not None else f"by time alone ({step.via})"
        if step.holds is None and reading is not None:
            note = f"decided at {iso(step.ts)} ({step.via})"
        ts = step.ts if reading is None else reading.source_ts
        self.rows.append(Row(ts, value, step.holds, step.before, step.after, track, note))


def _value(reading: Reading) -> str:
    value = reading.value
    if value is None:
        return f"no value ({reading.quality.value})"  # a Bad reading carries none
    if isinstance(value, bool) or not isinstance(value, int | float):
        return repr(value)
    return num(float(value))


def _cleared_if_ended(before: str, after: str) -> str:
    return CLEARED if before not in (NORMAL, "pending") and after == NORMAL else after


def _threshold_phase(rule: ThresholdRule, series_key: str) -> str:
    """The threshold rule's phase of a series, read from its state (it has no Episodes)."""
    series = rule._series.get(series_key)
    episode = None if series is None else series.episode
    if episode is None:
        return NORMAL
    return "raised" if hasattr(episode, "alert_id") else "pending"


# --- text ---------------------------------------------------------------------------------------
def _condition(row: Row) -> str:
    if row.holds is None:
        return row.note or "-"
    text = "condition held" if row.holds else "condition not held"
    return f"{text}, {row.note}" if row.note else text


def _phase(row: Row) -> str:
    return f"{row.before} -> {row.after}" if row.changed else row.after


def _line(row: Row) -> str:
    what = "event time" if row.value is None else f"value {row.value}"
    track = f"[{row.track}] " if row.track else ""
    return f"{iso(row.ts)}  {what:<16} {track}{_condition(row):<28} {_phase(row)}"


def _run_line(rows: list[Row]) -> str:
    first, last = rows[0], rows[-1]
    what = "readings" if first.value is not None else "ticks"
    values = sorted({row.value for row in rows if row.value is not None})
    shown = ""
    if values:
        shown = f" (values {values[0]})" if len(values) == 1 else f" ({len(values)} values)"
        numeric = _numbers(values)
        if numeric is not None and len(values) > 1:
            shown = f" (values {num(min(numeric))}..{num(max(numeric))})"
    track = f"[{first.track}] " if first.track else ""
    return (
        f"... {len(rows)} {what} {iso(first.ts)} .. {iso(last.ts)}{shown}, "
        f"{track}{_condition(first)}, {first.after}"
    )


def _numbers(values: list[str]) -> list[float] | None:
    try:
        return [float(value) for value in values]
    except ValueError:
        return None


def trace_lines(rows: list[Row]) -> Iterator[str]:
    """Each row as a line, runs of COMPRESS_FROM or more identical unchanged steps as one.
    Tracks are named only when more than one decided on the series."""
    if len({row.track for row in rows}) <= 1:
        rows = [replace(row, track="") for row in rows]
    for (_, changed), group in groupby(rows, key=lambda row: (row.same_kind(), row.changed)):
        run = list(group)
        if changed or len(run) < COMPRESS_FROM:
            yield from (_line(row) for row in run)
        else:
            yield _run_line(run)
