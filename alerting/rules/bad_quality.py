"""Bad-quality rule: a sensor reporting Bad (or, with `include_uncertain`, Uncertain) quality for
`for_s` seconds of source time: a sensor fault, for instrumentation, whatever the value says.

A reading's quality is the worse of its `quality` field and the severity of its OPC UA status
code (`Quality.from_status_code`); its value may be anything (a number, a boolean, text). A *bad
run* starts at the first bad reading after a good one; the condition holds once it has lasted
`for_s`, counted from the later of its start and the moment the gate was (last) seen open.

Silence: a Bad status that persists sends no further readings (a data change carries the status
change once), so `tick(watermark)` raises at bad-since + for_s once the watermark passes it, if
the gate is open as of the latest context seen (the machine states at tick time). A good reading
stops the condition; the alert clears after `off_delay_s` of good readings (completed on a
reading or on the watermark). The gate decides whether an episode starts, not whether it ends:
a stopped machine does not repair a sensor. Readings not newer than the last accepted one of
their series (or than a raise decided on silence) are ignored as out of order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from alerting.evidence import PointWindow, iso, num
from alerting.rules.base import NO_CONTEXT, Context, RuleConfigBase, RuleIdentity
from alerting.rules.common import (
    HISTORY_MARGIN_S,
    NonNegativeFloat,
    Parameters,
    SeriesRule,
    gate_parameters,
    open_since,
    raised_at,
)
from alerting.rules.episodes import Episodes, Subject, Transition
from plantmesh.contracts import AlertEvent, Quality, Reading

_RANK = {Quality.GOOD: 0, Quality.UNCERTAIN: 1, Quality.BAD: 2}


class BadQualityRuleConfig(RuleConfigBase):
    type: Literal["bad_quality"]
    for_s: NonNegativeFloat
    """How long, in source time, the sensor must report bad quality before the alert is raised."""
    include_uncertain: bool = False
    """Count Uncertain quality as bad too (default: only Bad)."""
    off_delay_s: NonNegativeFloat = 0.0
    """How long good readings must keep coming before the alert clears."""


def quality_of(reading: Reading) -> Quality:
    """The worse of the reading's quality field and its status code's severity."""
    derived = Quality.from_status_code(reading.status_code)
    return derived if _RANK[derived] > _RANK[reading.quality] else reading.quality


def hex_code(status_code: int) -> str:
    return f"0x{status_code:08X}"


@dataclass
class _BadRun:
    """Bad readings since the sensor last reported good quality."""

    since: datetime
    first_status: int
    last_status: int
    last_ts: datetime
    worst: Quality
    count: int = 1
    window: PointWindow = field(default_factory=PointWindow)


@dataclass
class _Series:
    subject: Subject
    context: Context
    """The latest context seen: the gate as of a tick is asked of its machine states."""
    last_ts: datetime | None = None
    gate_since: datetime | None = None
    """When the gate was seen open, continuously since; None while seen closed."""
    run: _BadRun | None = None
    held: _BadRun | None = None
    """The bad run of the open episode, for its evidence."""
    good: tuple[datetime, int] | None = None
    """The first good reading after the held run: (ts, status code)."""
    raised_by: str = "reading"


class BadQualityRule(SeriesRule[BadQualityRuleConfig]):
    _any_run = True
    """False once a tick found no series in a bad run and none started since."""

    def __init__(self, config: BadQualityRuleConfig, identity: RuleIdentity | None = None) -> None:
        super().__init__(config, identity)
        self._for = timedelta(seconds=config.for_s)
        self._worst_good = Quality.GOOD if config.include_uncertain else Quality.UNCERTAIN
        self._episodes = Episodes(config.name, 0.0, config.off_delay_s)
        self._series: dict[str, _Series] = {}

    # --- the decision, in one place -------------------------------------------------------------
    def _is_bad(self, quality: Quality) -> bool:
        return _RANK[quality] > _RANK[self._worst_good]

    def _due(self, series: _Series, active: bool) -> datetime | None:
        """When the current bad run has lasted for_s (gate-open time unless active)."""
        run = series.run
        if run is None:
            return None
        if active:
            return run.since  # raised: bad is enough to hold, the delay was met
        if series.gate_since is None:
            return None
        return max(run.since, series.gate_since) + self._for

    def _see_gate(self, series: _Series, at: datetime) -> None:
        asset, context = series.subject.asset, series.context
        series.gate_since = open_since(self._filter, asset, context, series.gate_since, at)

    def _follow(self, series: _Series, reading: Reading, quality: Quality) -> None:
        ts, code = reading.source_ts, reading.status_code
        run = series.run
        if not self._is_bad(quality):
            if run is not None and run is series.held and series.good is None:
                series.good = (ts, code)
            series.run = None
            return
        if run is None:
            run = series.run = _BadRun(ts, code, code, ts, quality, count=0)
            self._any_run = True
        run.count += 1
        run.last_status, run.last_ts = code, ts
        if _RANK[quality] > _RANK[run.worst]:
            run.worst = quality
        value = reading.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            run.window.add(ts, float(value))

    @property
    def history_s(self) -> float:
        """Input a replay needs before an episode: a bad run lasts for_s."""
        return self.config.for_s + HISTORY_MARGIN_S

    # --- Rule -----------------------------------------------------------------------------------
    def evaluate(self, reading: Reading, context: Context = NO_CONTEXT) -> list[AlertEvent]:
        if not self._filter.matches(reading, context):
            return []
        key, ts = reading.series_key, reading.source_ts
        series = self._series.get(key)
        if series is None:
            subject = Subject(reading.asset, reading.signal, context.machine_class)
            series = self._series[key] = _Series(subject, context)
        if self._late(series.last_ts, ts):
            return []
        series.last_ts, series.context = ts, context
        self._see_gate(series, ts)
        self._follow(series, reading, quality_of(reading))
        due = self._due(series, self._episodes.active(key))
        holds = due is not None and due <= ts
        transition = self._episodes.observe(key, ts, holds, series.subject)
        if holds:
            self._hold(series, "reading")
        return [] if transition is None else [self._event(transition, series)]

    def tick(self, watermark: datetime) -> list[AlertEvent]:
        """Complete off-delays, and raise the bad runs that lasted for_s by `watermark` without a
        reading: a Bad status that persists is not sent again."""
        events = [
            self._event(t, self._series[t.episode.subject.series_key])
            for t in self._episodes.tick(watermark)
        ]
        if not self._any_run:
            return events  # no bad run anywhere (the usual case): no series to look at
        self._any_run = False
        for key, series in self._series.items():
            self._any_run = self._any_run or series.run is not None
            if series.last_ts is None or series.last_ts >= watermark or series.run is None:
                continue
            if self._episodes.get(key) is not None:
                continue  # raised (a bad run with an episode open is raised, never clearing)
            self._see_gate(series, watermark)
            at = self._due(series, active=False)
            if at is None or at > watermark or at <= series.last_ts:
                continue  # at <= last_ts: the last reading decided already
            transition = self._episodes.observe(key, at, True, series.subject)
            series.last_ts = at  # silence decided up to here: an older late reading changes nothing
            self._hold(series, "watermark")
            if transition is not None:
                events.append(self._event(transition, series))
        return events

    def _hold(self, series: _Series, by: str) -> None:
        if series.held is not series.run:
            series.held, series.good, series.raised_by = series.run, None, by

    # --- evidence -------------------------------------------------------------------------------
    def _event(self, transition: Transition, series: _Series) -> AlertEvent:
        episode, run = transition.episode, series.held
        assert run is not None  # an episode starts only with its bad run
        what = f"{episode.subject.signal} of {episode.subject.asset.key}"
        params = self._parameters(series, run, transition.at)
        if transition.raised:
            silence = (
                f"; no reading since {iso(run.last_ts)}, the status persists"
                if series.raised_by == "watermark"
                else ""
            )
            summary = (
                f"{what} reports {run.worst.value} quality ({hex_code(run.last_status)}) for "
                f"{params['bad_for_s']} s since {iso(run.since)}, {run.count} bad reading(s)"
                f"{silence}"
            )
            condition = f"quality {self._condition_text()} for >= {num(self.config.for_s)} s" + (
                " with the gate open" if self.config.gate is not None else ""
            )
        else:
            raised = raised_at(transition)
            params |= {"raised_at": iso(raised)}
            back = ""
            if series.good is not None:
                params |= {
                    "good_at": iso(series.good[0]),
                    "good_status_code": hex_code(series.good[1]),
                }
                back = f" at {iso(series.good[0])} ({hex_code(series.good[1])})"
            summary = (
                f"{what} reports good quality again{back} after "
                f"{(transition.at - raised).total_seconds():.1f} s raised "
                f"({run.count} bad reading(s) since {iso(run.since)})"
            )
            condition = (
                f"quality not {self._condition_text()} for >= {num(self.config.off_delay_s)} s"
            )
        return self._emit(transition, summary, condition, params, run.window.points())

    def _condition_text(self) -> str:
        return "bad or uncertain" if self.config.include_uncertain else "bad"

    def _parameters(self, series: _Series, run: _BadRun, at: datetime) -> Parameters:
        config = self.config
        params: Parameters = {
            "status_code": hex_code(run.last_status),
            "first_status_code": hex_code(run.first_status),
            "quality": run.worst.value,
            "since": iso(run.since),
            "bad_for_s": round((at - run.since).total_seconds(), 6),
            "last_bad_ts": iso(run.last_ts),
            "bad_readings": run.count,
            "for_s": config.for_s,
            "include_uncertain": str(config.include_uncertain).lower(),
            "off_delay_s": config.off_delay_s,
            "raised_by": series.raised_by,
        }
        if run.window.omitted:
            params["points_omitted"] = run.window.omitted
        return params | gate_parameters(config)
