"""Threshold rule with deadband and on-delay, evaluated per series (asset + signal) in event time.

    normal --condition holds--> pending --held for on_delay_s--> raised --left by deadband--> normal
               pending --condition stops before on_delay_s--> normal (no alert)

Time is the readings' source_ts: processing delay, consumer lag or a replay never change the
outcome. Bad-quality readings are ignored (and counted in the evidence); a reading not newer than
the last one accepted for its series is ignored as out of order (or a duplicate). A signal that
reports only on change (OPC UA data changes, a Modbus `on_change` register) sends no reading
while the condition holds: the on-delay completes on the engine's watermark tick instead, at
first crossing + on_delay_s, exactly as if a reading had come then.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import model_validator

from alerting.evidence import PointWindow, alert_id, iso, num
from alerting.rules.base import NO_CONTEXT, Context, RuleConfigBase, RuleIdentity, is_bad
from alerting.rules.common import (
    NEVER,
    FiniteFloat,
    NonNegativeFloat,
    Parameters,
    SeriesRule,
    omitted_parameters,
    sooner,
    unit_suffix,
)
from plantmesh.contracts import AlertEvent, AlertEventKind, AssetPath, Evidence, Reading

log = logging.getLogger(__name__)


class ThresholdRuleConfig(RuleConfigBase):
    type: Literal["threshold"]
    above: FiniteFloat | None = None
    """Raise when the value is strictly above this (exactly one of above / below)."""
    below: FiniteFloat | None = None
    """Raise when the value is strictly below this."""
    deadband: NonNegativeFloat = 0.0
    """Clear only once the value is below `above - deadband` (above `below + deadband`)."""
    on_delay_s: NonNegativeFloat = 0.0
    """How long, in source time, the condition must hold before the alert is raised."""

    @model_validator(mode="after")
    def _exactly_one_limit(self) -> ThresholdRuleConfig:
        if (self.above is None) == (self.below is None):
            state = "both are set" if self.above is not None else "neither is set"
            raise ValueError(f"set exactly one of 'above' or 'below' ({state})")
        return self


@dataclass(kw_only=True)
class _Episode:
    """One excursion of a series: from the first crossing on."""

    first_ts: datetime
    asset: AssetPath
    signal: str
    machine_class: str | None
    unit: str | None
    extreme: float
    window: PointWindow = field(default_factory=PointWindow)
    bad_ignored: int = 0


@dataclass(kw_only=True)
class _Pending(_Episode):
    """The condition holds, the on-delay has not elapsed yet."""


@dataclass(kw_only=True)
class _Raised(_Episode):
    alert_id: str
    raised_at: datetime


@dataclass
class _Series:
    last_ts: datetime | None = None
    episode: _Pending | _Raised | None = None


class ThresholdRule(SeriesRule[ThresholdRuleConfig]):
    _next_due: datetime | None = None
    """No pending on-delay completes before this (NEVER: none pending), so a tick before it
    has nothing to do; None: not known, the next tick looks (also for a rule restored from a
    checkpoint written before this existed)."""

    def __init__(self, config: ThresholdRuleConfig, identity: RuleIdentity | None = None) -> None:
        super().__init__(config, identity)
        self._above = config.above is not None
        limit = config.above if config.above is not None else config.below
        assert limit is not None  # guaranteed by the config validator
        self.limit = limit
        self.clear_level = limit - config.deadband if self._above else limit + config.deadband
        self._series: dict[str, _Series] = {}
        self.ignored_bad_quality = 0

    # --- the decision, in one place -------------------------------------------------------------
    def _holds(self, value: float) -> bool:
        return value > self.limit if self._above else value < self.limit

    def _cleared(self, value: float) -> bool:
        return value < self.clear_level if self._above else value > self.clear_level

    def _extreme(self, a: float, b: float) -> float:
        return max(a, b) if self._above else min(a, b)

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
        series.last_ts = ts  # accepted (also when bad): its duplicate is ignored, not counted
        if is_bad(reading):
            self.ignored_bad_quality += 1
            if series.episode is not None:
                series.episode.bad_ignored += 1
            return []

        episode = series.episode
        holds = self._holds(value) and self._filter.gate_open(
            reading.asset, context, reading.source_ts
        )
        if episode is None:
            if not holds:
                return []
            episode = series.episode = _Pending(
                first_ts=ts,
                asset=reading.asset,
                signal=reading.signal,
                machine_class=context.machine_class,
                unit=reading.unit,
                extreme=value,
            )
            due = ts + timedelta(seconds=self.config.on_delay_s)
            self._next_due = sooner(self._next_due, due)
            return self._advance_pending(series, episode, reading, value)
        if isinstance(episode, _Pending):
            if not holds:
                # Back to normal before the on-delay elapsed: no alert. No deadband needed here,
                # the deadband only guards a raised alert against chattering.
                series.episode = None
                return []
            return self._advance_pending(series, episode, reading, value)
        episode.window.add(ts, value)
        episode.extreme = self._extreme(episode.extreme, value)
        if not self._cleared(value):
            return []
        series.episode = None
        return [self._cleared_event(episode, reading, value)]

    def _advance_pending(
        self, series: _Series, pending: _Pending, reading: Reading, value: float
    ) -> list[AlertEvent]:
        pending.window.add(reading.source_ts, value)
        pending.extreme = self._extreme(pending.extreme, value)
        if (reading.source_ts - pending.first_ts).total_seconds() < self.config.on_delay_s:
            return []
        return [self._raise(series, pending, reading.source_ts)]

    def tick(self, watermark: datetime) -> list[AlertEvent]:
        """Raise the pending episodes whose on-delay elapsed by `watermark`: the last reading
        held the condition, and no reading since said otherwise."""
        if self._next_due is not None and watermark < self._next_due:
            return []  # the service ticks after every poll: most ticks have nothing to do
        delay = timedelta(seconds=self.config.on_delay_s)
        events = []
        next_due = NEVER
        for series in self._series.values():
            pending = series.episode
            if isinstance(pending, _Pending):
                due = pending.first_ts + delay
                if due <= watermark:
                    events.append(self._raise(series, pending, due))
                else:
                    next_due = min(next_due, due)
        self._next_due = next_due
        return events

    def _raise(self, series: _Series, pending: _Pending, at: datetime) -> AlertEvent:
        event = self._raised_event(pending, at)
        series.episode = _Raised(
            alert_id=event.alert_id,
            first_ts=pending.first_ts,
            asset=pending.asset,
            signal=pending.signal,
            machine_class=pending.machine_class,
            raised_at=at,
            unit=pending.unit,
            extreme=pending.extreme,
        )
        return event

    # --- evidence ---------------------------------------------------------------------------------
    @property
    def _direction(self) -> str:
        return "above" if self._above else "below"

    @property
    def _extreme_name(self) -> str:
        return "max" if self._above else "min"

    def _common_parameters(self, first_ts: datetime, extreme: float) -> Parameters:
        return {
            "threshold": self.limit,
            "direction": self._direction,
            "deadband": self.config.deadband,
            "on_delay_s": self.config.on_delay_s,
            "first_crossing_ts": iso(first_ts),
            self._extreme_name: extreme,
        }

    def _window_parameters(self, window: PointWindow, bad_ignored: int) -> tuple[Parameters, str]:
        params: Parameters = {"points_total": window.total}
        note = f"; {bad_ignored} bad-quality reading(s) ignored" if bad_ignored else ""
        return params | omitted_parameters(window, bad_ignored), note

    def _raised_event(self, pending: _Pending, at: datetime) -> AlertEvent:
        held_s = (at - pending.first_ts).total_seconds()
        params = self._common_parameters(pending.first_ts, pending.extreme)
        window_params, note = self._window_parameters(pending.window, pending.bad_ignored)
        params |= window_params
        op = ">" if self._above else "<"
        summary = (
            f"{pending.signal} of {pending.asset.key} {self._direction} {num(self.limit)}"
            f"{unit_suffix(pending.unit)} for {held_s:.1f} s "
            f"({self._extreme_name} {num(pending.extreme)}){note}"
        )
        return self.identity.event(
            AlertEventKind.RAISED,
            alert_id(self.name, f"{pending.asset.key}/{pending.signal}", pending.first_ts),
            pending.asset,
            pending.signal,
            at,
            Evidence(
                summary=summary,
                condition=f"value {op} {num(self.limit)} for >= {num(self.config.on_delay_s)} s",
                points=pending.window.points(),
                parameters=params,
            ),
            pending.machine_class,
        )

    def _cleared_event(self, raised: _Raised, reading: Reading, value: float) -> AlertEvent:
        # A reading behind the watermark may say the value was back before the watermark
        # raised: the clear is then at the raise, never before it.
        cleared_at = max(reading.source_ts, raised.raised_at)
        active_s = (cleared_at - raised.raised_at).total_seconds()
        params = self._common_parameters(raised.first_ts, raised.extreme)
        params |= {
            "clear_level": self.clear_level,
            "raised_at": iso(raised.raised_at),
            "active_s": active_s,
            "value": value,
        }
        window_params, note = self._window_parameters(raised.window, raised.bad_ignored)
        params |= window_params
        back = "below" if self._above else "above"
        op = "<" if self._above else ">"
        sign = "-" if self._above else "+"
        summary = (
            f"{reading.signal} of {reading.asset.key} back {back} {num(self.clear_level)}"
            f"{unit_suffix(raised.unit)} ({num(value)}) after {active_s:.1f} s raised "
            f"({self._extreme_name} {num(raised.extreme)}){note}"
        )
        return self.identity.event(
            AlertEventKind.CLEARED,
            raised.alert_id,
            raised.asset,
            raised.signal,
            cleared_at,
            Evidence(
                summary=summary,
                condition=(
                    f"value {op} {num(self.clear_level)} (threshold {num(self.limit)} "
                    f"{sign} deadband {num(self.config.deadband)})"
                ),
                points=raised.window.points(),
                parameters=params,
            ),
            raised.machine_class,
        )
