"""What the rule types share beyond the Rule protocol (base.py): their config field types, the
constructor preamble and late-reading policy of a rule on series (`SeriesRule`), the gate's
open-since clock, and the evidence fragments several rules report the same way.

Config fields stay declared in each rule's config, in their own order: `model_dump_json` (the
rule version hash) follows the declaration order, so a shared mixin of delay keys would change
every rule's version for the same YAML."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from pydantic import Field

from alerting.evidence import PointWindow
from alerting.rules.base import NO_CONTEXT, Context, RuleConfigBase, RuleIdentity, SeriesFilter
from alerting.rules.base import numeric as _numeric
from alerting.rules.episodes import Subject, Transition
from plantmesh.contracts import (
    AlertEvent,
    AlertEventKind,
    AssetPath,
    Evidence,
    EvidencePoint,
    Reading,
    Severity,
)

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
NonPositiveFloat = Annotated[float, Field(le=0, allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]

Parameters = dict[str, int | float | str]

NEVER = datetime.max.replace(tzinfo=UTC)
"""A time no watermark reaches: "nothing due" for a rule that skips ticks with nothing to do."""

HISTORY_MARGIN_S = 60.0
"""Added to a rule's `history_s`: a replay starts this much earlier than strictly needed."""

ConfigT = TypeVar("ConfigT", bound=RuleConfigBase)


NO_VALUE = math.nan
"""What `_numeric_match` gives for a Bad reading (plantmesh.contracts.readings: no value); never
a value a rule compares, since every rule sets a Bad reading aside before it uses one."""


class SeriesRule(Generic[ConfigT]):
    """The preamble of every rule on series: its config, name, identity (default severity
    medium), signals and match filter, and the out-of-order counter of its late policy."""

    def __init__(self, config: ConfigT, identity: RuleIdentity | None = None) -> None:
        self.config = config
        self.name = config.name
        self.identity = identity or RuleIdentity.of(config, Severity.MEDIUM)
        self.signals = frozenset({config.signal})
        self._filter = SeriesFilter(config)
        self.ignored_out_of_order = 0

    def _numeric_match(self, reading: Reading, context: Context = NO_CONTEXT) -> float | None:
        """The value of a reading this rule evaluates; None: not its series, or not a number.
        NO_VALUE for a Bad reading of its series, which carries no value: the rule still counts
        it (duplicates, `bad_quality_ignored`) and sets it aside by `is_bad` before it looks at
        a value."""
        if not self._filter.matches(reading, context):
            return None
        value = reading.value  # numeric(), inlined: this runs for every reading of every rule
        if value.__class__ is float:
            return value
        if value is None:
            return NO_VALUE
        return _numeric(reading)

    def _late(self, last_ts: datetime | None, ts: datetime) -> bool:
        """A reading not newer than the last one accepted for its series is out of order (or a
        duplicate): the caller ignores it, counted here."""
        if last_ts is not None and ts <= last_ts:
            self.ignored_out_of_order += 1
            return True
        return False

    def _emit(
        self,
        found: Transition,
        summary: str,
        condition: str,
        params: Parameters,
        points: list[EvidencePoint] | None = None,
        severity: Severity | None = None,
    ) -> AlertEvent:
        """The raise or clear event of a transition, stamped with the episode's subject."""
        subject = found.episode.subject
        evidence = Evidence(
            summary=summary, condition=condition, points=points or [], parameters=params
        )
        return self.identity.event(
            AlertEventKind.RAISED if found.raised else AlertEventKind.CLEARED,
            found.episode.alert_id,
            subject.asset,
            subject.signal,
            found.at,
            evidence,
            subject.machine_class,
            severity=severity,
        )


def subject_of(known: Subject | None, reading: Reading, context: Context) -> Subject:
    """The subject of a reading's episodes: `known` (a series' cached one) while its machine
    class still holds, else a new one (made once per series, not per reading: the hot path)."""
    if known is not None and known.machine_class == context.machine_class:
        return known
    return Subject(reading.asset, reading.signal, context.machine_class)


def sooner(bound: datetime | None, due: datetime) -> datetime | None:
    """A rule's "nothing due before" bound once something may be due at `due` (None: not
    known, stays so)."""
    return bound if bound is None or bound <= due else due


def open_since(
    filter_: SeriesFilter, asset: AssetPath, context: Context, since: datetime | None, at: datetime
) -> datetime | None:
    """When the gate was seen open, continuously, as of `at`: None while it is seen closed."""
    if not filter_.gate_open(asset, context, at):
        return None
    return at if since is None else since


def gate_parameters(config: RuleConfigBase) -> Parameters:
    """The gate as an evidence parameter (`running == True`), when the rule has one."""
    gate = config.gate
    return {} if gate is None else {"gate": f"{gate.signal} == {gate.equals}"}


def omitted_parameters(window: PointWindow, bad_ignored: int = 0) -> Parameters:
    """The points the evidence left out and the bad-quality readings ignored, when any."""
    params: Parameters = {}
    if window.omitted:
        params["points_omitted"] = window.omitted
    if bad_ignored:
        params["bad_quality_ignored"] = bad_ignored
    return params


def raised_at(found: Transition) -> datetime:
    """When the episode of a clear was raised (its clear time if it never was)."""
    return found.episode.raised_at or found.at


def unit_suffix(unit: str | None, default: str = "") -> str:
    """` bar` after a value, or `default` without a unit."""
    return f" {unit}" if unit else default
