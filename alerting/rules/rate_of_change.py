"""Rate-of-change rule: a value moving too fast (a bearing heating up, a pressure bleeding off),
per series, in event time.

The rate is the endpoint slope (last - first) / (t_last - t_first) of the good numeric readings
within the last `window_s` of source time, in units per second or per minute. Endpoints (not a
least-squares fit) so the evidence's first and last point *are* the computation: a reader checks
it with a calculator. Noise is handled by the window length and the deadband. A rate exists only
with at least `min_points` readings spanning at least half the window; without one (a gap, a
signal that reports only on change) the condition does not hold, so a raised alert clears through
the normal off-delay path: missing data is the `stale` rule's business, not this one's.

Rising and falling are separate episodes (separate alerts), each with its own deadband: a raised
rising alert holds while the rate stays at or above `rising_above - deadband`. The gate closing
makes the condition not hold (the alert clears through the off-delay). Bad-quality readings are
ignored and counted; a reading not newer than the last one accepted for its series is ignored.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field, model_validator

from alerting.evidence import PointWindow, iso, num
from alerting.rules.base import NO_CONTEXT, Context, RuleConfigBase, RuleIdentity, is_bad
from alerting.rules.common import (
    HISTORY_MARGIN_S,
    NonNegativeFloat,
    NonPositiveFloat,
    Parameters,
    PositiveFloat,
    SeriesRule,
    gate_parameters,
    raised_at,
    subject_of,
)
from alerting.rules.episodes import Episodes, Subject, Transition
from plantmesh.contracts import AlertEvent, Reading

_SECONDS_PER = {"second": 1.0, "minute": 60.0}
_UNIT_SUFFIX = {"second": "/s", "minute": "/min"}
RISING, FALLING = "rising", "falling"


class RateOfChangeRuleConfig(RuleConfigBase):
    type: Literal["rate_of_change"]
    window_s: PositiveFloat
    """The rate is computed over the readings of the last `window_s` seconds of source time."""
    per: Literal["second", "minute"]
    """The time unit of the rate and of its limits (required: a limit without it is ambiguous)."""
    rising_above: NonNegativeFloat | None = None
    """Raise when the rate is strictly above this (units per `per`)."""
    falling_below: NonPositiveFloat | None = None
    """Raise when the rate is strictly below this, e.g. -2.0 (units per `per`)."""
    deadband: NonNegativeFloat = 0.0
    """On the rate: a raised alert holds until the rate is back inside the limit by this much."""
    min_points: int = Field(default=3, ge=2)
    """The fewest readings in the window for a rate to exist at all."""
    on_delay_s: NonNegativeFloat = 0.0
    """How long, in source time, the rate must stay beyond its limit before the alert is raised."""
    off_delay_s: NonNegativeFloat = 0.0
    """How long the rate must stay back inside before the alert clears."""

    @model_validator(mode="after")
    def _at_least_one_limit(self) -> RateOfChangeRuleConfig:
        if self.rising_above is None and self.falling_below is None:
            raise ValueError("set 'rising_above', 'falling_below' or both")
        return self


@dataclass(frozen=True, slots=True)
class _Rate:
    """One computed rate and the window it came from."""

    value: float
    first: tuple[datetime, float]
    last: tuple[datetime, float]
    count: int

    @property
    def span_s(self) -> float:
        return (self.last[0] - self.first[0]).total_seconds()


@dataclass
class _Trace:
    """What one episode (one direction) saw, for its evidence."""

    first_ts: datetime
    peak: float
    bad_ignored: int = 0


@dataclass
class _Series:
    unit: str | None = None
    last_ts: datetime | None = None
    points: deque[tuple[datetime, float]] = field(default_factory=deque)
    rate: _Rate | None = None
    traces: dict[str, _Trace] = field(default_factory=dict)
    subject: Subject | None = None
    """The subject of its episodes (made once: the hot path)."""


class RateOfChangeRule(SeriesRule[RateOfChangeRuleConfig]):
    def __init__(
        self, config: RateOfChangeRuleConfig, identity: RuleIdentity | None = None
    ) -> None:
        super().__init__(config, identity)
        self._window = timedelta(seconds=config.window_s)
        self._scale = _SECONDS_PER[config.per]
        self._limits: dict[str, float] = {}
        if config.rising_above is not None:
            self._limits[RISING] = config.rising_above
        if config.falling_below is not None:
            self._limits[FALLING] = config.falling_below
        self._episodes = {
            direction: Episodes(config.name, config.on_delay_s, config.off_delay_s)
            for direction in self._limits
        }
        """One episode life per direction, keyed by series: rising and falling alert apart."""
        self._series: dict[str, _Series] = {}
        self.ignored_bad_quality = 0

    # --- the decision, in one place -------------------------------------------------------------
    def _rate(self, points: deque[tuple[datetime, float]]) -> _Rate | None:
        """The endpoint slope of the window, or None when the window is too thin to say."""
        if len(points) < self.config.min_points:
            return None
        first, last = points[0], points[-1]
        span_s = (last[0] - first[0]).total_seconds()
        if span_s <= 0 or span_s < self.config.window_s / 2:
            return None
        return _Rate((last[1] - first[1]) / span_s * self._scale, first, last, len(points))

    def _clear_level(self, direction: str) -> float:
        limit = self._limits[direction]
        return limit - self.config.deadband if direction == RISING else limit + self.config.deadband

    def _holds(self, direction: str, rate: _Rate | None, active: bool) -> bool:
        if rate is None:
            return False
        limit = self._limits[direction]
        if direction == RISING:
            return rate.value >= self._clear_level(direction) if active else rate.value > limit
        return rate.value <= self._clear_level(direction) if active else rate.value < limit

    @property
    def history_s(self) -> float:
        """Input a replay needs before an episode: a rate spans window_s."""
        return self.config.window_s + self.config.on_delay_s + HISTORY_MARGIN_S

    # --- Rule -----------------------------------------------------------------------------------
    def evaluate(self, reading: Reading, context: Context = NO_CONTEXT) -> list[AlertEvent]:
        value = self._numeric_match(reading, context)
        if value is None:
            return []
        key = reading.series_key
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
        ts = reading.source_ts
        if self._late(series.last_ts, ts):
            return []
        series.last_ts = ts  # accepted (also when bad): its duplicate is ignored
        if is_bad(reading):
            self.ignored_bad_quality += 1
            for trace in series.traces.values():
                trace.bad_ignored += 1
            return []
        series.unit = reading.unit
        series.points.append((ts, value))
        while series.points[0][0] < ts - self._window:
            series.points.popleft()
        series.rate = self._rate(series.points)
        gate_open = self._filter.gate_open(reading.asset, context, reading.source_ts)
        subject = series.subject = subject_of(series.subject, reading, context)
        events = []
        for direction, episodes in self._episodes.items():
            holds = gate_open and self._holds(direction, series.rate, episodes.active(key))
            transition = episodes.observe(key, ts, holds, subject)
            if holds:
                self._follow(series, direction, episodes, key)
            if transition is not None:
                events.append(self._event(transition, series, direction))
        return events

    def tick(self, watermark: datetime) -> list[AlertEvent]:
        """Complete the on- and off-delays that elapsed by `watermark` without a new reading."""
        events = []
        for direction, episodes in self._episodes.items():
            for transition in episodes.tick(watermark):
                series = self._series[transition.episode.subject.series_key]
                events.append(self._event(transition, series, direction))
        return events

    def _follow(self, series: _Series, direction: str, episodes: Episodes, key: str) -> None:
        """Keep the trace of the episode open under `key` (a new one for a new episode)."""
        episode, rate = episodes.get(key), series.rate
        assert episode is not None  # called only while the condition holds
        assert rate is not None
        trace = series.traces.get(direction)
        if trace is None or trace.first_ts != episode.first_ts:
            series.traces[direction] = _Trace(episode.first_ts, rate.value)
        else:
            trace.peak = self._peak(direction, trace.peak, rate.value)

    @staticmethod
    def _peak(direction: str, a: float, b: float) -> float:
        return max(a, b) if direction == RISING else min(a, b)

    # --- evidence -------------------------------------------------------------------------------
    def _rate_unit(self, unit: str | None) -> str:
        return f"{unit or 'units'}{_UNIT_SUFFIX[self.config.per]}"

    def _event(self, transition: Transition, series: _Series, direction: str) -> AlertEvent:
        episode = transition.episode
        trace = series.traces[direction]
        rate_unit = self._rate_unit(series.unit)
        limit = self._limits[direction]
        params = self._parameters(series, direction, trace)
        rate = series.rate
        rate_text = "no rate (window too thin)" if rate is None else f"{num(rate.value)}"
        subject = f"{episode.subject.signal} of {episode.subject.asset.key}"
        if transition.raised:
            op = ">" if direction == RISING else "<"
            summary = (
                f"{subject} {direction} at {rate_text} {rate_unit} (limit {num(limit)} "
                f"{rate_unit}) over {num(self.config.window_s)} s"
            )
            condition = (
                f"rate {op} {num(limit)} {rate_unit} over {num(self.config.window_s)} s "
                f"(>= {self.config.min_points} points spanning >= "
                f"{num(self.config.window_s / 2)} s) for >= {num(self.config.on_delay_s)} s"
            )
        else:
            op = "<" if direction == RISING else ">"
            level = self._clear_level(direction)
            raised = raised_at(transition)
            params |= {"raised_at": iso(raised), "clear_level": level}
            summary = (
                f"{subject} no longer {direction} beyond {num(level)} {rate_unit} ({rate_text}) "
                f"after {(transition.at - raised).total_seconds():.1f} s raised "
                f"(peak {num(trace.peak)} {rate_unit})"
            )
            condition = (
                f"rate {op} {num(level)} {rate_unit} (limit {num(limit)}, deadband "
                f"{num(self.config.deadband)}) or no rate, for >= {num(self.config.off_delay_s)} s"
            )
        window = PointWindow()
        for ts, value in series.points:
            window.add(ts, value)
        if window.omitted:
            params["points_omitted"] = window.omitted
        return self._emit(transition, summary, condition, params, window.points())

    def _parameters(self, series: _Series, direction: str, trace: _Trace) -> Parameters:
        config = self.config
        params: Parameters = {
            "direction": direction,
            "limit": self._limits[direction],
            "rate_unit": self._rate_unit(series.unit),
            "per": config.per,
            "deadband": config.deadband,
            "window_s": config.window_s,
            "min_points": config.min_points,
            "on_delay_s": config.on_delay_s,
            "off_delay_s": config.off_delay_s,
            "first_crossing_ts": iso(trace.first_ts),
            "peak_rate": round(trace.peak, 6),
            "points_in_window": len(series.points),
        }
        rate = series.rate
        if rate is not None:
            params |= {
                "rate": round(rate.value, 6),
                "window_first_ts": iso(rate.first[0]),
                "window_first_value": rate.first[1],
                "window_last_ts": iso(rate.last[0]),
                "window_last_value": rate.last[1],
                "window_span_s": rate.span_s,
            }
        params |= gate_parameters(config)
        if trace.bad_ignored:
            params["bad_quality_ignored"] = trace.bad_ignored
        return params
