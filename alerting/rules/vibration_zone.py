"""ISO 10816 / ISO 20816 evaluation zones on a vibration velocity RMS signal (mm/s), per series.

    zone A: value <= b        zone B: b < value <= c        zone C: c < value <= d     zone D: d < value

The boundaries (A/B = b, B/C = c, C/D = d) depend on the machine, so they are configured per
machine class, with an optional `default` entry; a machine whose class has no entry and no
default is not evaluated by this rule. Typical values from the standards' machine groups, as
examples only (check the edition and part that applies to the machine, and its own history):

    class II, medium machines 15-75 kW (ISO 10816-1):          b 1.4   c 2.8   d 4.5 mm/s
    large machines on rigid foundations (ISO 10816-1 cl. III): b 2.3   c 4.5   d 7.1 mm/s

One episode is the excursion into zone C or above: it raises with the rule's severity once C has
held for `on_delay_s`. If, within the same episode, zone D holds for `on_delay_s` too, the SAME
alert (same alert_id) is raised again with `severity_zone_d`: the alert escalated, not a new one.
It never de-escalates; it clears once the value has stayed below `c - deadband` for
`off_delay_s`. A reading taken while the gate is closed does not hold the condition, so a stopped
machine clears through that same path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from alerting.evidence import PointWindow, iso, num
from alerting.rules.base import NO_CONTEXT, Context, RuleConfigBase, RuleIdentity, is_bad
from alerting.rules.common import (
    NonNegativeFloat,
    Parameters,
    PositiveFloat,
    SeriesRule,
    omitted_parameters,
    subject_of,
    unit_suffix,
)
from alerting.rules.episodes import Episodes, Subject, Transition
from plantmesh.config import ConfigModel
from plantmesh.contracts import AlertEvent, AlertEventKind, Reading, Severity

DEFAULT_CLASS = "default"
_RANK = {severity: rank for rank, severity in enumerate(Severity)}


class ZoneBoundaries(ConfigModel):
    """The zone boundaries of one machine class, in mm/s (velocity RMS)."""

    b: PositiveFloat
    """Boundary A/B: newly commissioned machines are normally below it."""
    c: PositiveFloat
    """Boundary B/C: above it the machine is unsatisfactory for long-term operation (raise)."""
    d: PositiveFloat
    """Boundary C/D: above it vibration may cause damage (escalate)."""

    @model_validator(mode="after")
    def _ascending(self) -> ZoneBoundaries:
        if not self.b < self.c < self.d:
            raise ValueError(
                f"zone boundaries must ascend b < c < d (got {self.b}, {self.c}, {self.d})"
            )
        return self


class VibrationZoneRuleConfig(RuleConfigBase):
    type: Literal["vibration_zone"]
    zones: dict[str, ZoneBoundaries] = Field(min_length=1)
    """Boundaries per machine class; the key `default` serves classes without their own entry."""
    deadband: NonNegativeFloat = 0.0
    """mm/s below the B/C boundary the value must fall before the alert clears."""
    on_delay_s: NonNegativeFloat = 0.0
    """How long zone C (and, to escalate, zone D) must hold before raising."""
    off_delay_s: NonNegativeFloat = 0.0
    """How long the value must stay below `c - deadband` before the alert clears."""
    severity_zone_d: Severity = Severity.CRITICAL
    """The severity of an alert in (or escalated to) zone D."""

    @model_validator(mode="after")
    def _consistent(self) -> VibrationZoneRuleConfig:
        for machine_class, zones in self.zones.items():
            if self.deadband >= zones.c:
                raise ValueError(
                    f"deadband {self.deadband} must be below the B/C boundary {zones.c} of "
                    f"'{machine_class}', or the alert could never clear"
                )
        if self.severity is not None and _RANK[self.severity_zone_d] < _RANK[self.severity]:
            raise ValueError(
                f"severity_zone_d '{self.severity_zone_d}' is lower than severity "
                f"'{self.severity}': zone D must not page less than zone C"
            )
        return self


@dataclass
class _Series:
    last_ts: datetime | None = None
    window: PointWindow = field(default_factory=PointWindow)
    """The points of the current episode (reset when no episode is open)."""
    peak: float = 0.0
    bad_ignored: int = 0
    escalated: bool = False
    unit: str | None = None
    subject: Subject | None = None
    """What its episodes are about (made once: the hot path)."""

    def fresh(self) -> bool:
        """Nothing of an episode kept (what a reset would give)."""
        return not (self.window.total or self.peak or self.bad_ignored or self.escalated)


class VibrationZoneRule(SeriesRule[VibrationZoneRuleConfig]):
    def __init__(
        self, config: VibrationZoneRuleConfig, identity: RuleIdentity | None = None
    ) -> None:
        super().__init__(config, identity)
        # Zone C holds (the episode) and zone D holds (its escalation) live side by side; D
        # only ever holds while C does, so its episode never outlives or precedes C's.
        self._zone_c = Episodes(config.name, config.on_delay_s, config.off_delay_s)
        self._zone_d = Episodes(config.name, config.on_delay_s, config.off_delay_s)
        higher = max(self.identity.severity, config.severity_zone_d, key=_RANK.__getitem__)
        self.severity_zone_d = higher
        self._series: dict[str, _Series] = {}
        self._bounds: dict[str, tuple[str, ZoneBoundaries]] = {}
        """Per series: the boundaries last used and which zones key they came from."""
        self.ignored_bad_quality = 0
        self.ignored_unclassified = 0

    def boundaries(self, machine_class: str | None) -> tuple[str, ZoneBoundaries] | None:
        """The zones entry for a class, falling back to `default`; None: not evaluated."""
        zones = self.config.zones
        if machine_class is not None and machine_class in zones:
            return machine_class, zones[machine_class]
        if DEFAULT_CLASS in zones:
            return DEFAULT_CLASS, zones[DEFAULT_CLASS]
        return None

    # --- Rule -----------------------------------------------------------------------------------
    def evaluate(self, reading: Reading, context: Context = NO_CONTEXT) -> list[AlertEvent]:
        value = self._numeric_match(reading, context)
        if value is None:
            return []
        found = self.boundaries(context.machine_class)
        if found is None:
            self.ignored_unclassified += 1
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
            if self._zone_c.get(key) is not None:
                series.bad_ignored += 1
            return []
        series.unit = reading.unit
        self._bounds[key] = found
        zones = found[1]
        gate_open = self._filter.gate_open(reading.asset, context, reading.source_ts)
        clear_level = zones.c - self.config.deadband
        level = clear_level if self._zone_c.active(key) else zones.c
        subject = series.subject = subject_of(series.subject, reading, context)
        c_change = self._zone_c.observe(key, ts, gate_open and value > level, subject)
        d_change = self._zone_d.observe(key, ts, gate_open and value > zones.d, subject)
        if self._zone_c.get(key) is not None or c_change is not None:
            series.window.add(ts, value)
            series.peak = max(series.peak, value)
        events = (
            []
            if c_change is d_change is None
            else self._decide(key, series, c_change, d_change, value)
        )
        if self._zone_c.get(key) is None and not series.fresh():
            self._series[key] = _Series(last_ts=ts, unit=reading.unit, subject=subject)
        return events

    def tick(self, watermark: datetime) -> list[AlertEvent]:
        """Delays that elapsed by `watermark` on a quiet (report-by-exception) series."""
        c_changes = {t.episode.subject.series_key: t for t in self._zone_c.tick(watermark)}
        d_changes = {t.episode.subject.series_key: t for t in self._zone_d.tick(watermark)}
        events: list[AlertEvent] = []
        for key in sorted(c_changes.keys() | d_changes.keys()):
            series = self._series[key]
            events += self._decide(key, series, c_changes.get(key), d_changes.get(key), None)
            if self._zone_c.get(key) is None:
                self._series[key] = _Series(
                    last_ts=series.last_ts, unit=series.unit, subject=series.subject
                )
        return events

    # --- the decision, in one place -------------------------------------------------------------
    def _decide(
        self,
        key: str,
        series: _Series,
        c_change: Transition | None,
        d_change: Transition | None,
        value: float | None,
    ) -> list[AlertEvent]:
        """Turn the zone C and zone D transitions of one series into alert events: a raise (in
        zone D already when D's own on-delay completed by then), an escalation, or a clear."""
        events: list[AlertEvent] = []
        if c_change is not None and not c_change.raised:
            self._zone_d.end(key, c_change.at)
            return [self._event(key, series, c_change, AlertEventKind.CLEARED, value)]
        if c_change is not None:
            d_episode = self._zone_d.get(key)
            d_raised_at = None if d_episode is None else d_episode.raised_at
            series.escalated = d_raised_at is not None and d_raised_at <= c_change.at
            events.append(self._event(key, series, c_change, AlertEventKind.RAISED, value))
        c_episode = self._zone_c.get(key)
        if (
            d_change is not None
            and d_change.raised
            and not series.escalated
            and c_episode is not None
            and c_episode.raised_at is not None
        ):
            series.escalated = True
            escalation = Transition(True, d_change.at, c_episode)
            events.append(self._event(key, series, escalation, AlertEventKind.RAISED, value))
        return events

    # --- evidence -------------------------------------------------------------------------------
    def _parameters(
        self, key: str, series: _Series, first_ts: datetime, value: float | None
    ) -> dict[str, int | float | str]:
        """The zone, the boundaries used (and whose), the delays and the episode's points."""
        boundary_class, zones = self._bounds[key]
        params: Parameters = {
            "zone": "D" if series.escalated else "C",
            "boundary_a_b": zones.b,
            "boundary_b_c": zones.c,
            "boundary_c_d": zones.d,
            "boundaries_class": boundary_class,
            "deadband": self.config.deadband,
            "clear_level": round(zones.c - self.config.deadband, 6),
            "on_delay_s": self.config.on_delay_s,
            "off_delay_s": self.config.off_delay_s,
            "first_crossing_ts": iso(first_ts),
            "max": series.peak,
            "points_total": series.window.total,
        }
        if value is not None:
            params["value"] = value
        return params | omitted_parameters(series.window, series.bad_ignored)

    def _event(
        self,
        key: str,
        series: _Series,
        change: Transition,
        kind: AlertEventKind,
        value: float | None,
    ) -> AlertEvent:
        episode = change.episode
        boundary_class, zones = self._bounds[key]
        zone = "D" if series.escalated else "C"
        severity = self.severity_zone_d if series.escalated else self.identity.severity
        unit = unit_suffix(series.unit, " mm/s")
        clear_level = zones.c - self.config.deadband
        params = self._parameters(key, series, episode.first_ts, value)
        where = f"{episode.subject.signal} of {episode.subject.asset.key}"
        if kind is AlertEventKind.RAISED:
            limit = zones.d if series.escalated else zones.c
            summary = (
                f"{where} in ISO zone {zone} (above {num(limit)}{unit}, boundaries of "
                f"'{boundary_class}'; max {num(series.peak)})"
            )
            if series.escalated and episode.raised_at is not None and episode.raised_at < change.at:
                summary += f"; escalated from zone C raised at {iso(episode.raised_at)}"
                params["escalated_from"] = "C"
            condition = f"value > {num(limit)} for >= {num(self.config.on_delay_s)} s"
        else:
            summary = (
                f"{where} back below {num(clear_level)}{unit} (zone B/C boundary {num(zones.c)} "
                f"- deadband); was in zone {zone}, max {num(series.peak)}"
            )
            condition = f"value <= {num(clear_level)} for >= {num(self.config.off_delay_s)} s"
        return self._emit(change, summary, condition, params, series.window.points(), severity)
