"""Growing oscillation: the amplitude of a signal rising from window to window, per series.

Event time is cut into consecutive windows of `window_s`, aligned to the Unix epoch (so every
replay, and every instance, cuts the same windows). A window's amplitude (`measure`: peak to peak,
or the population standard deviation) counts only with at least `min_points` good readings; a
window that lacks them, or a gap, restarts the run. A window is closed by the first reading of a
later window, or by `tick(watermark)` once the watermark passes its end (a quiet series): its
decision is dated at the window end either way, so both paths give the same events.

    raise: the last `growth_windows` amplitudes each grew by >= `min_growth` over the window
           before (growth_windows + 1 consecutive windows) AND the latest is >= `min_amplitude`
           (absolute: growing noise does not page).
    clear: a closed window's amplitude < `clear_below` (default `min_amplitude`), and no window
           back above it for `off_delay_s`, or, counted in windows, for `clear_windows`
           consecutive windows (= an off-delay of (clear_windows - 1) * window_s).

Between the two the episode stays raised whatever the swings do: one growing instability is one
alert. A reading while the gate is closed ends the episode (the machine stopped; what it showed
is over) and restarts the run. A window without enough readings decides nothing, so a raised
alert on a series gone silent stays raised (a data-gap rule is what reports the silence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import Field, model_validator

from alerting.evidence import PointWindow, iso, num
from alerting.rules.base import NO_CONTEXT, Context, RuleConfigBase, RuleIdentity, is_bad
from alerting.rules.common import (
    HISTORY_MARGIN_S,
    NEVER,
    NonNegativeFloat,
    Parameters,
    PositiveFloat,
    SeriesRule,
    omitted_parameters,
    sooner,
    subject_of,
)
from alerting.rules.episodes import Episodes, Subject, Transition
from plantmesh.contracts import AlertEvent, Reading

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


class OscillationRuleConfig(RuleConfigBase):
    type: Literal["oscillation"]
    window_s: Annotated[float, Field(ge=0.001, allow_inf_nan=False)] = 60.0
    """Length of one amplitude window; windows are aligned to the Unix epoch."""
    measure: Literal["peak_to_peak", "std"] = "peak_to_peak"
    """The amplitude of a window: max - min, or the population standard deviation."""
    min_points: Annotated[int, Field(ge=2)] = 10
    """Good readings a window needs for its amplitude to count."""
    growth_windows: Annotated[int, Field(ge=1)] = 3
    """How many successive window-to-window growths must all reach `min_growth`."""
    min_growth: Annotated[float, Field(gt=1, allow_inf_nan=False)] = 1.2
    """Smallest ratio amplitude / previous amplitude that counts as growth (1.2: +20 %)."""
    min_amplitude: PositiveFloat
    """The latest amplitude must reach this (signal units) to raise: noise does not page."""
    clear_below: PositiveFloat | None = None
    """A window amplitude below this stops the episode; default `min_amplitude`."""
    off_delay_s: NonNegativeFloat | None = None
    """How long the amplitude must stay below `clear_below` to clear (default 0: first window)."""
    clear_windows: Annotated[int, Field(ge=1)] | None = None
    """Alternative to `off_delay_s`: clear after this many consecutive windows below."""

    @model_validator(mode="after")
    def _consistent(self) -> OscillationRuleConfig:
        if self.clear_below is not None and self.clear_below > self.min_amplitude:
            raise ValueError(
                f"clear_below {self.clear_below} is above min_amplitude {self.min_amplitude}: "
                "an amplitude could raise and clear at once"
            )
        if self.off_delay_s is not None and self.clear_windows is not None:
            raise ValueError("set at most one of 'off_delay_s' or 'clear_windows'")
        return self

    @property
    def clear_level(self) -> float:
        return self.min_amplitude if self.clear_below is None else self.clear_below

    @property
    def effective_off_delay_s(self) -> float:
        if self.clear_windows is not None:
            return (self.clear_windows - 1) * self.window_s
        return self.off_delay_s or 0.0


@dataclass
class _Window:
    """Running statistics of the open window (Welford for the standard deviation)."""

    index: int
    count: int = 0
    low: float = math.inf
    high: float = -math.inf
    mean: float = 0.0
    m2: float = 0.0
    bad_ignored: int = 0
    points: PointWindow = field(default_factory=PointWindow)

    def add(self, ts: datetime, value: float) -> None:
        self.count += 1
        self.low, self.high = min(self.low, value), max(self.high, value)
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)
        self.points.add(ts, value)

    def amplitude(self, measure: str) -> float:
        if measure == "std":
            return math.sqrt(max(self.m2, 0.0) / self.count)
        return self.high - self.low


@dataclass
class _Series:
    subject: Subject
    last_ts: datetime | None = None
    window: _Window | None = None
    closed_through: int | None = None
    """Index of the newest closed window: a reading in it (or before) is late."""
    run: list[tuple[int, float]] = field(default_factory=list)
    """(window index, amplitude) of the latest consecutive windows with an amplitude."""
    last_points: PointWindow = field(default_factory=PointWindow)
    """The readings of the window that decided last: the evidence points."""
    last_bad: int = 0
    """Bad-quality readings ignored in the window that decided last."""
    peak_amplitude: float = 0.0


class OscillationRule(SeriesRule[OscillationRuleConfig]):
    _next_close: datetime | None = None
    """No open window ends before this (NEVER: none open), so a tick before it closes none;
    None: not known, the next tick looks (also for a rule restored from an older checkpoint)."""

    def __init__(self, config: OscillationRuleConfig, identity: RuleIdentity | None = None) -> None:
        super().__init__(config, identity)
        self._window_us = max(1, round(config.window_s * 1_000_000))
        self._episodes = Episodes(config.name, 0.0, config.effective_off_delay_s)
        self._series: dict[str, _Series] = {}
        self.ignored_late = 0
        self.ignored_bad_quality = 0

    # --- windows --------------------------------------------------------------------------------
    def window_index(self, ts: datetime) -> int:
        return ((ts - EPOCH) // _US) // self._window_us

    def window_start(self, index: int) -> datetime:
        return EPOCH + index * self._window_us * _US

    @property
    def history_s(self) -> float:
        """Input a replay needs before an episode: a growth run spans growth_windows + 1 windows."""
        return self.config.window_s * (self.config.growth_windows + 2) + HISTORY_MARGIN_S

    # --- Rule -----------------------------------------------------------------------------------
    def evaluate(self, reading: Reading, context: Context = NO_CONTEXT) -> list[AlertEvent]:
        value = self._numeric_match(reading, context)
        if value is None:
            return []
        key = reading.series_key
        series = self._series.get(key)
        if series is None:
            subject = Subject(reading.asset, reading.signal, context.machine_class)
            series = self._series[key] = _Series(subject)
        ts = reading.source_ts
        if self._late(series.last_ts, ts):
            return []
        index = self.window_index(ts)
        if series.closed_through is not None and index <= series.closed_through:
            self.ignored_late += 1  # its window was closed by the watermark already
            return []
        series.last_ts = ts  # accepted (also when bad): its duplicate is ignored, not counted
        if is_bad(reading):
            self.ignored_bad_quality += 1
            if series.window is not None and series.window.index == index:
                series.window.bad_ignored += 1
            return []
        series.subject = subject_of(series.subject, reading, context)
        events: list[AlertEvent] = []
        if series.window is not None and series.window.index != index:
            events += self._close(key, series)
        if not self._filter.gate_open(reading.asset, context, reading.source_ts):
            series.window, series.run = None, []
            ended = self._episodes.end(key, ts)
            if ended is not None:
                events.append(self._event(series, ended, "the gate closed"))
            return events
        window = series.window or self._open(series, index)
        window.add(ts, value)
        return events

    def tick(self, watermark: datetime) -> list[AlertEvent]:
        """Close the windows that ended by `watermark`, then complete elapsed off-delays."""
        events: list[AlertEvent] = []
        if self._next_close is None or watermark >= self._next_close:
            # Windows share one grid, so they end together: most ticks (one per poll of the
            # service) end none and skip the look at every series.
            next_close = NEVER
            for key in sorted(self._series):
                series = self._series[key]
                window = series.window
                if window is None:
                    continue
                ends = self.window_start(window.index + 1)
                if ends <= watermark:
                    events += self._close(key, series)
                else:
                    next_close = min(next_close, ends)
            self._next_close = next_close
        for change in self._episodes.tick(watermark):
            series = self._series[change.episode.subject.series_key]
            events.append(self._event(series, change, "below the clear level"))
        return events

    def _open(self, series: _Series, index: int) -> _Window:
        window = series.window = _Window(index)
        ends = self.window_start(index + 1)
        self._next_close = sooner(self._next_close, ends)
        return window

    # --- the decision, in one place -------------------------------------------------------------
    def _close(self, key: str, series: _Series) -> list[AlertEvent]:
        """Close the open window: its amplitude extends (or restarts) the run and decides."""
        window = series.window
        assert window is not None
        series.window, series.closed_through = None, window.index
        if window.count < self.config.min_points:
            series.run = []  # not enough readings: no amplitude, the run restarts
            return []
        amplitude = window.amplitude(self.config.measure)
        if not series.run or series.run[-1][0] != window.index - 1:
            series.run = []
        series.run = [*series.run, (window.index, amplitude)][-(self.config.growth_windows + 1) :]
        series.last_points, series.last_bad = window.points, window.bad_ignored
        if self._episodes.get(key) is None:
            series.peak_amplitude = 0.0  # a new episode (if any) starts from this window
        active = self._episodes.active(key)
        # Raised: holds while the amplitude stays up. Otherwise: holds when it grows.
        holds = amplitude >= self.config.clear_level if active else self._growing(series.run)
        change = self._episodes.observe(
            key, self.window_start(window.index + 1), holds, series.subject
        )
        if self._episodes.get(key) is not None or change is not None:
            series.peak_amplitude = max(series.peak_amplitude, amplitude)
        if change is None:
            return []
        return [self._event(series, change, "below the clear level")]

    def _growing(self, run: list[tuple[int, float]]) -> bool:
        if len(run) < self.config.growth_windows + 1 or run[-1][1] < self.config.min_amplitude:
            return False
        return all(ratio >= self.config.min_growth for ratio in _ratios(run))

    # --- evidence -------------------------------------------------------------------------------
    def _event(self, series: _Series, change: Transition, why: str) -> AlertEvent:
        episode, config = change.episode, self.config
        params: Parameters = {
            "measure": config.measure,
            "window_s": config.window_s,
            "min_points": config.min_points,
            "growth_windows": config.growth_windows,
            "min_growth": config.min_growth,
            "min_amplitude": config.min_amplitude,
            "clear_below": config.clear_level,
            "off_delay_s": config.effective_off_delay_s,
            "max_amplitude": round(series.peak_amplitude, 6),
        }
        for n, (index, amplitude) in enumerate(series.run, start=1):
            params[f"amplitude_w{n}"] = round(amplitude, 6)
            params[f"window_start_w{n}"] = iso(self.window_start(index))
        for n, ratio in enumerate(_ratios(series.run), start=2):
            params[f"growth_w{n}"] = round(ratio, 6)
        params["points_total"] = series.last_points.total
        params |= omitted_parameters(series.last_points, series.last_bad)
        where = f"{episode.subject.signal} of {episode.subject.asset.key}"
        amplitudes = ", ".join(num(a) for _, a in series.run)
        if change.raised:
            summary = f"{where}: {config.measure} amplitude growing over windows ({amplitudes})"
            condition = (
                f"{config.growth_windows} successive window growths >= x{num(config.min_growth)} "
                f"and amplitude >= {num(config.min_amplitude)}"
            )
        else:
            summary = f"{where}: oscillation ended, {why} (amplitudes {amplitudes})"
            condition = (
                f"amplitude < {num(config.clear_level)} for >= "
                f"{num(config.effective_off_delay_s)} s"
            )
        return self._emit(change, summary, condition, params, series.last_points.points())


def _ratios(run: list[tuple[int, float]]) -> list[float]:
    """Amplitude growth per window; growth from a zero amplitude is not counted as growth."""
    return [b / a if a > 0 else 0.0 for (_, a), (_, b) in pairwise(run)]
