"""State-flapping rule: the process itself chatters, per series (asset + state signal).

A transition is a change of value from the last accepted reading (bool, number or text; the
first reading of a series is not a transition). The rule counts the transitions in a sliding
window of event time (t - window_s, t] and raises when the count reaches `min_transitions`; the
raised episode clears when the count falls below `clear_below` (the hysteresis that keeps one
burst of chatter one alert). The window slides with readings and with the engine's watermark:
a transition leaves the window at its time + window_s, and that is when the count drops, so a
signal that goes quiet clears on tick(watermark), at that exact instant, not at its next reading.

The series keeps its own clock (the newest of its readings and the watermarks it saw): a reading
behind that clock (later than the engine's allowed lateness, but newer than the series' last
reading) still updates the state and counts if its transition is still inside the window.
Bad-quality readings are ignored and counted (a bad status is not a state). Gate: while the gate
is closed the condition does not hold, so a raised episode clears at that reading; transitions
are still recorded (they happened), so the count is right when the gate opens again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field, model_validator

from alerting.evidence import PointWindow, iso, num
from alerting.rules.base import (
    NO_CONTEXT,
    Context,
    RuleConfigBase,
    RuleIdentity,
    StateValue,
    is_bad,
)
from alerting.rules.common import (
    HISTORY_MARGIN_S,
    NEVER,
    Parameters,
    PositiveFloat,
    SeriesRule,
    gate_parameters,
    omitted_parameters,
    raised_at,
    sooner,
)
from alerting.rules.episodes import Episodes, Subject, Transition
from plantmesh.contracts import AlertEvent, Reading

MAX_LISTED_STATES = 10
"""Text states named in the evidence parameters (state_0 ... state_9); more are only counted."""
MAX_STATE_NAME_CHARS = 200
"""A state's name in the evidence is cut to this: ten texts of any length a reading may carry
would make an alert event Kafka refuses, and its sink would retry it forever."""


class StateFlappingRuleConfig(RuleConfigBase):
    type: Literal["state_flapping"]
    min_transitions: Annotated[int, Field(ge=2)] = 6
    """Raise when this many transitions (or more) fall within the window."""
    window_s: PositiveFloat = 600.0
    """Length of the sliding window, in source time."""
    clear_below: Annotated[int, Field(ge=1)] | None = None
    """Clear when the count in the window falls below this. Default: min_transitions // 2."""

    @model_validator(mode="after")
    def _clear_not_above_raise(self) -> StateFlappingRuleConfig:
        if self.clear_below is not None and self.clear_below > self.min_transitions:
            raise ValueError(
                f"clear_below ({self.clear_below}) must not exceed min_transitions "
                f"({self.min_transitions}): a raised alert would clear at once"
            )
        return self

    @property
    def clear_level(self) -> int:
        return self.clear_below if self.clear_below is not None else self.min_transitions // 2


@dataclass(frozen=True, slots=True)
class _Change:
    ts: datetime
    value: StateValue


@dataclass
class _Series:
    subject: Subject
    last_ts: datetime
    last_value: StateValue
    clock: datetime
    """The newest time this series has been decided at (its readings and the watermarks)."""
    changes: deque[_Change] = field(default_factory=deque)
    states: dict[str, int] = field(default_factory=dict)
    """Each text state's stable index (first seen first), for the evidence points."""
    texts: dict[int, str] = field(default_factory=dict)
    window: PointWindow | None = None
    """The raised episode's transitions, for the clear's evidence."""
    peak: int = 0
    bad_ignored: int = 0
    born: int = 0
    """How many ticks the rule had seen when the series was first read."""


def _same(a: StateValue, b: StateValue) -> bool:
    """Equal value and kind: True and 1.0 are different states."""
    return type(a) is type(b) and a == b


class StateFlappingRule(SeriesRule[StateFlappingRuleConfig]):
    _next_due: datetime | None = None
    """No transition leaves its window before this (NEVER: none counted), so a tick before it
    would only move the series' clocks: it is skipped, and a series' clock catches up when the
    series is next read (`_floors`). None: look at every series (also for a rule restored from
    an older checkpoint)."""
    _ticks = 0
    _floors: tuple[tuple[int, datetime], ...] = ()
    """(tick number, watermark) of the ticks skipped since the last full one, the watermarks
    decreasing: the first one numbered after a series was born is the clock it was owed."""

    def __init__(
        self, config: StateFlappingRuleConfig, identity: RuleIdentity | None = None
    ) -> None:
        super().__init__(config, identity)
        self.window = timedelta(seconds=config.window_s)
        self.clear_below = config.clear_level
        self._episodes = Episodes(config.name)
        self._series: dict[str, _Series] = {}
        self.ignored_bad_quality = 0

    @property
    def history_s(self) -> float:
        """Input a replay needs before an episode: transitions are counted over window_s."""
        return self.config.window_s + HISTORY_MARGIN_S

    # --- Rule -----------------------------------------------------------------------------------
    def evaluate(self, reading: Reading, context: Context = NO_CONTEXT) -> list[AlertEvent]:
        if not self._filter.matches(reading, context):
            return []
        key, ts = reading.series_key, reading.source_ts
        series = self._series.get(key)
        if self._late(None if series is None else series.last_ts, ts):
            return []
        value = reading.value
        if is_bad(reading) or value is None:  # (only a Bad reading goes without a value)
            self.ignored_bad_quality += 1
            if series is not None:
                series.bad_ignored += 1
            return []
        if series is None:
            subject = Subject(reading.asset, reading.signal, context.machine_class)
            series = _Series(subject, ts, value, ts, born=self._ticks)
            self._series[key] = series
            self._number(series, value)  # a text state gets its index, first seen first
            return []
        self._catch_up(series)
        events = self._slide(key, series, ts)
        if not _same(value, series.last_value):
            self._record(series, _Change(ts, value))
        series.last_ts, series.last_value = ts, value
        holds = self._filter.gate_open(reading.asset, context, reading.source_ts) and self._holds(
            key, series
        )
        found = self._episodes.observe(key, max(ts, series.clock), holds, series.subject)
        if found is not None:
            events.append(self._event(found, series))
        return events

    def tick(self, watermark: datetime) -> list[AlertEvent]:
        """Slide every series' window to `watermark`: transitions age out with no new reading."""
        self._ticks += 1
        if self._next_due is not None and watermark < self._next_due:
            floors = self._floors
            while floors and floors[-1][1] <= watermark:
                floors = floors[:-1]
            self._floors = (*floors, (self._ticks, watermark))
            return []
        events: list[AlertEvent] = []
        next_due = NEVER
        for key, series in self._series.items():
            self._catch_up(series)
            events.extend(self._slide(key, series, watermark))
            if series.changes:
                next_due = min(next_due, series.changes[0].ts + self.window)
        self._floors, self._next_due = (), next_due
        return events

    def _catch_up(self, series: _Series) -> None:
        """The clock the ticks skipped since the series was born would have given it."""
        for number, watermark in self._floors:
            if number > series.born:
                series.clock = max(series.clock, watermark)
                return

    # --- the decision -----------------------------------------------------------------------------
    def _holds(self, key: str, series: _Series) -> bool:
        count = len(series.changes)
        if self._episodes.active(key):
            return count >= self.clear_below
        return count >= self.config.min_transitions

    def _record(self, series: _Series, change: _Change) -> None:
        number = self._number(series, change.value)
        if change.ts > series.clock - self.window:
            series.changes.append(change)
            self._next_due = sooner(self._next_due, change.ts + self.window)
        if series.window is not None:
            series.window.add(change.ts, number)
            series.peak = max(series.peak, len(series.changes))

    def _slide(self, key: str, series: _Series, to: datetime) -> list[AlertEvent]:
        """Move the series' clock to `to`: clear at the instant the count fell below clear_below
        (a transition leaves the window at its time + window_s), then drop what aged out."""
        if to <= series.clock:
            return []
        events = []
        changes = series.changes
        if self._episodes.active(key) and len(changes) >= self.clear_below:
            # The count drops below clear_below when this transition leaves the window.
            leaves = changes[len(changes) - self.clear_below].ts + self.window
            if leaves <= to:
                found = self._episodes.observe(key, leaves, False, series.subject)
                if found is not None:
                    events.append(self._event(found, series))
        series.clock = to
        while changes and changes[0].ts <= to - self.window:
            changes.popleft()
        return events

    # --- evidence ---------------------------------------------------------------------------------
    def _index(self, series: _Series, value: str) -> int:
        index = series.states.setdefault(value, len(series.states))
        series.texts.setdefault(index, value)
        return index

    def _number(self, series: _Series, value: StateValue) -> float:
        """bool -> 0/1, number as is, text -> its stable index in the series (listed in the
        parameters as state_<i>)."""
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if isinstance(value, int | float):
            return float(value)
        return float(self._index(series, value))

    def _event(self, found: Transition, series: _Series) -> AlertEvent:
        if found.raised:
            series.window = PointWindow()
            for change in series.changes:
                series.window.add(change.ts, self._number(series, change.value))
            series.peak = len(series.changes)
        window = series.window or PointWindow()
        count = len([c for c in series.changes if c.ts > found.at - self.window])
        params: Parameters = {
            "window_s": self.config.window_s,
            "transitions": count,
            "min_transitions": self.config.min_transitions,
            "clear_below": self.clear_below,
            "peak_transitions": series.peak,
            "points_total": window.total,
        }
        params |= self._state_names(series)
        params |= omitted_parameters(window, series.bad_ignored)
        params |= gate_parameters(self.config)
        subject = series.subject
        what = f"{subject.signal} of {subject.asset.key}"
        window_text = f"{num(self.config.window_s)} s"
        if found.raised:
            summary = f"{what} changed state {count} times in {window_text}"
            condition = f"transitions in {window_text} >= {self.config.min_transitions}"
        else:
            series.window = None
            params["raised_at"] = iso(raised_at(found))
            summary = (
                f"{what} steadier: {count} transition(s) in the last {window_text} "
                f"(peak {params['peak_transitions']})"
            )
            condition = f"transitions in {window_text} < {self.clear_below}"
        return self._emit(found, summary, condition, params, window.points())

    def _state_names(self, series: _Series) -> Parameters:
        return {
            f"state_{i}": _shown(text) for i, text in series.texts.items() if i < MAX_LISTED_STATES
        }


def _shown(text: str) -> str:
    return text if len(text) <= MAX_STATE_NAME_CHARS else text[: MAX_STATE_NAME_CHARS - 3] + "..."
