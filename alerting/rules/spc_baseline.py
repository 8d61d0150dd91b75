"""The in-control baseline of a series for the SPC rule: a robust centre and spread, learned from
the readings of a learning window, and the learner that gathers them.

Robust on purpose: centre = median, sigma = 1.4826 * MAD (the normal-consistent median absolute
deviation), so a few wild readings during learning (a 10-sigma spike, a sensor glitch) do not
move the baseline the charts measure against. When more than half of the readings are equal
(a quantized sensor) the MAD is 0; sigma then falls back to 1.2533 * mean absolute deviation
from the median (Iglewicz & Hoaglin), and for a truly constant series to `min_sigma`, so z never
divides by zero.

Also here: the whole per-series state of the rule (`SpcSeries`). All of it is plain data and
converts to and from dicts of JSON types exactly, for persistence.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from alerting.evidence import MAX_EVIDENCE_POINTS, iso
from alerting.rules.episodes import Subject
from alerting.rules.spc_charts import ChartState, ChartStatus
from plantmesh.contracts import AssetPath

MAD_TO_SIGMA = 1.4826
MEAN_AD_TO_SIGMA = 1.2533


def parse_ts(text: str) -> datetime:
    """The inverse of `iso` (Python 3.11 reads the trailing Z)."""
    return datetime.fromisoformat(text)


def robust_centre_sigma(values: list[float], min_sigma: float) -> tuple[float, float]:
    """(median, robust sigma) of `values`, sigma never below `min_sigma`."""
    centre = statistics.median(values)
    deviations = [abs(v - centre) for v in values]
    sigma = MAD_TO_SIGMA * statistics.median(deviations)
    if sigma <= 0.0:
        sigma = MEAN_AD_TO_SIGMA * statistics.fmean(deviations)
    return centre, max(sigma, min_sigma)


@dataclass(frozen=True, slots=True)
class Baseline:
    """What "in control" means for one series: the charts chart z = (x - centre) / sigma."""

    centre: float
    sigma: float
    points: int
    """How many readings it was learned from."""
    learned_from: datetime
    learned_to: datetime
    frozen: bool = True
    """A frozen baseline is never replaced by learning (only by a command or set_baseline)."""

    def __post_init__(self) -> None:
        if not self.sigma > 0.0:
            raise ValueError(f"baseline sigma must be > 0, got {self.sigma!r}")

    def z(self, value: float) -> float:
        return (value - self.centre) / self.sigma

    def frozen_copy(self) -> Baseline:
        return replace(self, frozen=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "centre": self.centre,
            "sigma": self.sigma,
            "points": self.points,
            "learned_from": iso(self.learned_from),
            "learned_to": iso(self.learned_to),
            "frozen": self.frozen,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Baseline:
        return cls(
            centre=float(data["centre"]),
            sigma=float(data["sigma"]),
            points=int(data["points"]),
            learned_from=parse_ts(data["learned_from"]),
            learned_to=parse_ts(data["learned_to"]),
            frozen=bool(data["frozen"]),
        )


@dataclass(slots=True)
class Learner:
    """The readings of one learning window. It is ready once it spans `learn_s` of event time
    with at least `min_points` readings, or holds `max_points` (a memory bound for fast series)."""

    values: list[float]
    first_ts: datetime | None = None
    last_ts: datetime | None = None

    @classmethod
    def empty(cls) -> Learner:
        return cls([])

    def add(self, ts: datetime, value: float) -> None:
        if self.first_ts is None:
            self.first_ts = ts
        self.last_ts = ts
        self.values.append(value)

    def ready(self, learn_s: float, min_points: int, max_points: int) -> bool:
        if self.first_ts is None or self.last_ts is None or len(self.values) < min_points:
            return False
        spanned = (self.last_ts - self.first_ts).total_seconds() >= learn_s
        return spanned or len(self.values) >= max_points

    def baseline(self, min_sigma: float, frozen: bool) -> Baseline:
        assert self.first_ts is not None  # ready() held
        assert self.last_ts is not None
        centre, sigma = robust_centre_sigma(self.values, min_sigma)
        return Baseline(centre, sigma, len(self.values), self.first_ts, self.last_ts, frozen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "values": list(self.values),
            "first_ts": None if self.first_ts is None else iso(self.first_ts),
            "last_ts": None if self.last_ts is None else iso(self.last_ts),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Learner:
        first, last = data["first_ts"], data["last_ts"]
        return cls(
            [float(v) for v in data["values"]],
            None if first is None else parse_ts(first),
            None if last is None else parse_ts(last),
        )


def _recent() -> deque[tuple[datetime, float]]:
    return deque(maxlen=MAX_EVIDENCE_POINTS)


@dataclass(slots=True)
class SpcSeries:
    """Everything the SPC rule knows of one series (but its episode), as plain data."""

    last_ts: datetime | None = None
    subject: Subject | None = None
    unit: str | None = None
    pin: bool = False
    """`freeze` was commanded before a baseline existed: the learned one will be frozen."""
    baseline: Baseline | None = None
    learner: Learner = field(default_factory=Learner.empty)
    """Learning (no baseline yet), or relearning in the background (adaptive, not frozen)."""
    charts: ChartState = field(default_factory=ChartState)
    status: ChartStatus | None = None
    """What the charts said at the last charted reading."""
    recent: deque[tuple[datetime, float]] = field(default_factory=_recent)
    """The last charted readings: the evidence points."""
    bad_ignored: int = 0
    gate_closed: int = 0

    def restart(self, baseline: Baseline | None) -> None:
        """A new baseline (or none): the charts' units changed, so their memory goes."""
        self.baseline = baseline
        self.learner = Learner.empty()
        self.charts = ChartState()
        self.status = None

    def to_dict(self) -> dict[str, Any]:
        subject = self.subject
        return {
            "last_ts": None if self.last_ts is None else iso(self.last_ts),
            "subject": None
            if subject is None
            else [subject.asset.key, subject.signal, subject.machine_class],
            "unit": self.unit,
            "pin": self.pin,
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
            "learner": self.learner.to_dict(),
            "charts": self.charts.to_dict(),
            "status": None if self.status is None else self.status.to_dict(),
            "recent": [[iso(ts), value] for ts, value in self.recent],
            "bad_ignored": self.bad_ignored,
            "gate_closed": self.gate_closed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpcSeries:
        subject = data["subject"]
        baseline, status = data["baseline"], data["status"]
        recent = _recent()
        recent.extend((parse_ts(ts), float(value)) for ts, value in data["recent"])
        return cls(
            last_ts=None if data["last_ts"] is None else parse_ts(data["last_ts"]),
            subject=None
            if subject is None
            else Subject(AssetPath.parse(subject[0]), subject[1], subject[2]),
            unit=data["unit"],
            pin=bool(data["pin"]),
            baseline=None if baseline is None else Baseline.from_dict(baseline),
            learner=Learner.from_dict(data["learner"]),
            charts=ChartState.from_dict(data["charts"]),
            status=None if status is None else ChartStatus.from_dict(status),
            recent=recent,
            bad_ignored=int(data["bad_ignored"]),
            gate_closed=int(data["gate_closed"]),
        )
