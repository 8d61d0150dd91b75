"""Flatline rule: a frozen sensor, i.e. a value that has not moved by more than `epsilon` for
`for_s` seconds of source time while the machine runs (usually gated on `running`).

A *run* is the good numeric readings since the value last moved: it lasts while their spread
(max - min) stays within `epsilon`, and a reading that would widen it beyond starts a new run.
The condition holds once a run has lasted `for_s`, counted from the later of the run's start and
the moment the gate was (last) seen open, so a machine that starts after a long stop is not
reported for the constant value it had while stopped.

Silence: a signal that reports only on change (`report_by_exception: true`) sends nothing while
frozen, so silence counts as unchanged and `tick(watermark)` raises at start + for_s once the
watermark passes it, if the gate is open as of the latest context seen (the machine states at
tick time) and the machine's other signals still arrived at or after that time (MachineStates
`seen`): a whole machine gone quiet is a dead link, the `stale` rule's job, not a frozen
sensor. Without that flag silence proves nothing, so only readings raise.

Watching: a run counts only while the machine is watched. When the machine sent nothing at all
for more than `machine_silence_s` (a comms loss, a PLC restart), nobody saw the value in between:
the run counts again from the machine's first reading after the gap.

The gate decides whether an episode starts, not whether it ends: a stopped machine does not fix
a frozen transmitter, so a raised alert clears only when the value moves (after `off_delay_s`).
Bad-quality readings are ignored and counted; readings not newer than the last accepted one of
their series (or than a raise decided on silence) are ignored as out of order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from alerting.evidence import PointWindow, iso, num
from alerting.rules.base import NO_CONTEXT, Context, RuleConfigBase, RuleIdentity, is_bad
from alerting.rules.common import (
    HISTORY_MARGIN_S,
    NonNegativeFloat,
    Parameters,
    PositiveFloat,
    SeriesRule,
    gate_parameters,
    open_since,
    raised_at,
    unit_suffix,
)
from alerting.rules.episodes import Episodes, Phase, Subject, Transition
from plantmesh.contracts import AlertEvent, Reading


class FlatlineRuleConfig(RuleConfigBase):
    type: Literal["flatline"]
    for_s: PositiveFloat
    """How long, in source time, the value must stay unchanged before the alert is raised."""
    epsilon: NonNegativeFloat = 0.0
    """The largest spread (max - min) of a run that still counts as unchanged."""
    report_by_exception: bool = False
    """The signal reports only on change: silence counts as unchanged (raised on the watermark)."""
    off_delay_s: NonNegativeFloat = 0.0
    """How long the value must keep moving before the alert clears."""
    machine_silence_s: PositiveFloat = 10.0
    """A machine that sent nothing for longer than this was not watched (see the docstring)."""


@dataclass
class _Run:
    """Readings since the value last moved."""

    start: datetime
    first_value: float
    low: float
    high: float
    last_ts: datetime
    count: int = 1
    window: PointWindow = field(default_factory=PointWindow)

    def spread_with(self, value: float) -> float:
        return max(self.high, value) - min(self.low, value)

    def add(self, ts: datetime, value: float) -> None:
        self.low, self.high = min(self.low, value), max(self.high, value)
        self.last_ts = ts
        self.count += 1
        self.window.add(ts, value)

    def restart(self, ts: datetime, value: float) -> None:
        """A new run from this reading, in place: on a noisy signal every reading starts one,
        and a new object (with its window) per reading cost more than the decision."""
        self.start = self.last_ts = ts
        self.first_value = self.low = self.high = value
        self.count = 1
        self.window.clear()
        self.window.add(ts, value)


@dataclass
class _Series:
    subject: Subject
    context: Context
    """The latest context seen: the gate as of a tick is asked of its machine states."""
    unit: str | None = None
    last_ts: datetime | None = None
    gate_since: datetime | None = None
    """When the gate was seen open, continuously since; None while seen closed."""
    run: _Run | None = None
    frozen: _Run | None = None
    """The run of the open episode, for its evidence."""
    moved: tuple[datetime, float] | None = None
    """The reading that ended the frozen run."""
    raised_by: str = "reading"
    bad_ignored: int = 0
    """Bad-quality readings ignored since the frozen run was first held."""
    machine_seen: datetime | None = None
    """Until when the machine had reported, as last looked at."""
    watched_since: datetime | None = None
    """The machine's first reading after its last gap longer than machine_silence_s."""


class FlatlineRule(SeriesRule[FlatlineRuleConfig]):
    def __init__(self, config: FlatlineRuleConfig, identity: RuleIdentity | None = None) -> None:
        super().__init__(config, identity)
        self._for = timedelta(seconds=config.for_s)
        self._off = timedelta(seconds=config.off_delay_s)
        self._machine_silence = timedelta(seconds=config.machine_silence_s)
        self._episodes = Episodes(config.name, 0.0, config.off_delay_s)
        self._series: dict[str, _Series] = {}
        self.ignored_bad_quality = 0

    # --- the decision, in one place -------------------------------------------------------------
    def _due(self, series: _Series, active: bool) -> datetime | None:
        """When the current run has been unchanged for for_s (gate-open time unless active)."""
        run = series.run
        if run is None:
            return None
        start = run.start
        if series.watched_since is not None:
            start = max(start, series.watched_since)
        if active:
            return start + self._for
        if series.gate_since is None:
            return None
        return max(start, series.gate_since) + self._for

    def _watch(self, series: _Series) -> datetime | None:
        """Look at until when the machine reported; a gap longer than machine_silence_s since
        the last look restarts the count. Returns that time (None: not known)."""
        states = series.context.states
        seen = None if states is None else states.seen(series.subject.asset)
        if seen is None:
            return None
        last = series.machine_seen
        if last is not None and seen - last > self._machine_silence:
            series.watched_since = seen
        series.machine_seen = seen if last is None else max(last, seen)
        return series.machine_seen

    def _see_gate(self, series: _Series, at: datetime) -> None:
        asset, context = series.subject.asset, series.context
        series.gate_since = open_since(self._filter, asset, context, series.gate_since, at)

    def _follow(self, series: _Series, ts: datetime, value: float) -> None:
        run = series.run
        if run is not None and run.spread_with(value) <= self.config.epsilon:
            run.add(ts, value)
            return
        if run is not None and run is series.frozen:
            series.moved = (ts, value)
            run = None  # the episode's evidence keeps it
        if run is None:
            run = series.run = _Run(ts, value, value, value, ts)
            run.window.add(ts, value)
        else:
            run.restart(ts, value)

    @property
    def history_s(self) -> float:
        """Input a replay needs before an episode: a flat run lasts for_s."""
        return self.config.for_s + HISTORY_MARGIN_S

    # --- Rule -----------------------------------------------------------------------------------
    def evaluate(self, reading: Reading, context: Context = NO_CONTEXT) -> list[AlertEvent]:
        value = self._numeric_match(reading, context)
        if value is None:
            return []
        key, ts = reading.series_key, reading.source_ts
        series = self._series.get(key)
        if series is None:
            subject = Subject(reading.asset, reading.signal, context.machine_class)
            series = self._series[key] = _Series(subject, context)
        if self._late(series.last_ts, ts):
            return []
        series.last_ts = ts  # accepted (also when bad): its duplicate is ignored
        if is_bad(reading):
            self.ignored_bad_quality += 1
            series.bad_ignored += 1
            return []
        series.unit, series.context = reading.unit, context
        self._see_gate(series, ts)
        self._watch(series)
        self._follow(series, ts, value)
        due = self._due(series, self._episodes.active(key))
        holds = due is not None and due <= ts
        transition = self._episodes.observe(key, ts, holds, series.subject)
        if holds:
            self._hold(series, "reading")
        return [] if transition is None else [self._event(transition, series)]

    def tick(self, watermark: datetime) -> list[AlertEvent]:
        """Complete off-delays; with report_by_exception also raise on silence: no reading
        since the run started means the value did not change."""
        if not self.config.report_by_exception:
            return [
                self._event(t, self._series[t.episode.subject.series_key])
                for t in self._episodes.tick(watermark)
            ]
        events: list[AlertEvent] = []
        due: dict[str, datetime] = {}
        for key, series in self._series.items():
            if series.last_ts is not None and series.last_ts < watermark:
                self._see_gate(series, watermark)
                seen = self._watch(series)
                at = self._silence_due(key, series, watermark)
                # Silence is news only while the machine's other signals still arrive.
                if at is not None and (seen is None or seen >= at):
                    due[key] = at
        for key, at in due.items():  # holds again before its off-delay elapsed: not a clear
            episode = self._episodes.get(key)
            stopped = None if episode is None else episode.stopped_ts
            if stopped is not None and stopped + self._off > at:
                self._observe_silence(key, at, events)
        events.extend(
            self._event(t, self._series[t.episode.subject.series_key])
            for t in self._episodes.tick(watermark)
        )
        for key, at in due.items():
            if self._episodes.get(key) is None:
                self._observe_silence(key, at, events)
        return events

    def _silence_due(self, key: str, series: _Series, watermark: datetime) -> datetime | None:
        """When silence makes the condition hold by `watermark`, if it does and did not yet."""
        episode = self._episodes.get(key)
        if episode is not None and episode.phase is Phase.RAISED:
            return None
        # Due at or before the last reading: that reading was bad (not evaluated), since a good
        # one would have raised; the episodes saw nothing after the last good one, so `at` is
        # still in order for them.
        at = self._due(series, self._episodes.active(key))
        return None if at is None or at > watermark else at

    def _observe_silence(self, key: str, at: datetime, events: list[AlertEvent]) -> None:
        series = self._series[key]
        transition = self._episodes.observe(key, at, True, series.subject)
        # Silence decided up to here: an older late reading changes nothing.
        series.last_ts = at if series.last_ts is None else max(series.last_ts, at)
        self._hold(series, "watermark")
        if transition is not None:
            events.append(self._event(transition, series))

    def _hold(self, series: _Series, by: str) -> None:
        if series.frozen is not series.run:
            series.frozen, series.moved, series.raised_by = series.run, None, by
            series.bad_ignored = 0

    # --- evidence -------------------------------------------------------------------------------
    def _event(self, transition: Transition, series: _Series) -> AlertEvent:
        episode, run = transition.episode, series.frozen
        assert run is not None  # an episode starts only with its frozen run
        unit = unit_suffix(series.unit)
        what = f"{episode.subject.signal} of {episode.subject.asset.key}"
        params = self._parameters(series, run, transition.at)
        if transition.raised:
            silence = (
                f"; no reading since {iso(run.last_ts)}, silence counted as unchanged"
                if series.raised_by == "watermark"
                else ""
            )
            summary = (
                f"{what} frozen at {num(run.first_value)}{unit} (spread {num(run.high - run.low)}"
                f" <= {num(self.config.epsilon)}) for {params['frozen_for_s']} s since "
                f"{iso(run.start)}, {run.count} reading(s){silence}"
            )
            condition = (
                f"spread <= {num(self.config.epsilon)} for >= {num(self.config.for_s)} s"
                + (" with the gate open" if self.config.gate is not None else "")
            )
        else:
            raised = raised_at(transition)
            params |= {"raised_at": iso(raised)}
            moved = ""
            if series.moved is not None:
                params |= {"moved_at": iso(series.moved[0]), "moved_to": series.moved[1]}
                moved = f" to {num(series.moved[1])}{unit} at {iso(series.moved[0])}"
            summary = (
                f"{what} moving again{moved} after {(transition.at - raised).total_seconds():.1f}"
                f" s raised (was frozen at {num(run.first_value)}{unit} since {iso(run.start)})"
            )
            condition = (
                f"value moved by > {num(self.config.epsilon)}, for >= "
                f"{num(self.config.off_delay_s)} s"
            )
        return self._emit(transition, summary, condition, params, run.window.points())

    def _parameters(self, series: _Series, run: _Run, at: datetime) -> Parameters:
        config = self.config
        params: Parameters = {
            "frozen_value": run.first_value,
            "min": run.low,
            "max": run.high,
            "spread": round(run.high - run.low, 6),
            "since": iso(run.start),
            "frozen_for_s": round((at - run.start).total_seconds(), 6),
            "last_reading_ts": iso(run.last_ts),
            "readings_unchanged": run.count,
            "epsilon": config.epsilon,
            "for_s": config.for_s,
            "off_delay_s": config.off_delay_s,
            "report_by_exception": str(config.report_by_exception).lower(),
            "machine_silence_s": config.machine_silence_s,
            "raised_by": series.raised_by,
        }
        if run.window.omitted:
            params["points_omitted"] = run.window.omitted
        params |= gate_parameters(config)
        if series.bad_ignored:
            params["bad_quality_ignored"] = series.bad_ignored
        return params
