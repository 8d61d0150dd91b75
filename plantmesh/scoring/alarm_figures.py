"""Alarm-management figures of an alert log, after ISA-18.2 and EEMUA 191 (plantmesh.scoring.score).

An alert is a raised episode (plantmesh.scoring.matching: one alert_id, duplicates counted once); a
series is plant/machine/signal and rule, what one line of an operator's alarm list is. The log
carries no operator or console, so the whole log is treated as one operator's load.
- Alert rate: raised alerts per fixed 10-minute window, from the run's start (the truth's tick 0;
  without truth, the first alert) to its last alert event or event end. Average and peak. ISA-18.2
  targets: about 1 per 10 min on average (2 at most manageable), a peak of 10 or fewer.
- Flood: a 10-minute window with more than 10 alerts (ISA-18.2 / EEMUA 191); reported as the
  number of such windows and the percent of windows (of time) in flood. Target: under 1 %.
- Chattering: a series raising 3 or more times within 60 s (first and last raise at most 60 s
  apart), the usual ISA-18.2 rule of thumb. Target: none. Reported worst first.
- Frequent: a series raising more than 3 times within 10 minutes (sliding). Target: none.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from plantmesh.scoring.matching import Episode
from plantmesh.scoring.truth import iso_utc

WINDOW = timedelta(minutes=10)
FLOOD_ABOVE = 10  # alerts in a window; more is a flood
CHATTER_SPAN = timedelta(seconds=60)
CHATTER_COUNT = 3  # raised within CHATTER_SPAN: chattering
FREQUENT_ABOVE = 3  # raised within WINDOW; more is too frequent


@dataclass(frozen=True)
class Burst:
    """The densest run of raises of one series: `count` raises from `start`."""

    series: str
    count: int
    start: datetime

    def to_json(self) -> dict[str, Any]:
        return {"series": self.series, "count": self.count, "start": iso_utc(self.start)}


@dataclass(frozen=True)
class IsaFigures:
    alerts: int = 0
    windows: int = 0  # 10-minute windows of the run
    peak: int = 0  # most alerts in one window
    flood_windows: int = 0
    chattering: list[Burst] = field(default_factory=list)  # worst first
    frequent: list[Burst] = field(default_factory=list)  # worst first

    @property
    def mean(self) -> float | None:
        """Average alerts per 10 minutes."""
        return self.alerts / self.windows if self.windows else None

    @property
    def flood_percent(self) -> float | None:
        return 100.0 * self.flood_windows / self.windows if self.windows else None

    def to_json(self) -> dict[str, Any]:
        return {
            "alerts": self.alerts,
            "windows_10min": self.windows,
            "alerts_per_10min_mean": self.mean,
            "alerts_per_10min_peak": self.peak,
            "flood_threshold": FLOOD_ABOVE,
            "flood_windows": self.flood_windows,
            "flood_percent": self.flood_percent,
            "chattering_series": [b.to_json() for b in self.chattering],
            "frequent_series": [b.to_json() for b in self.frequent],
        }


def densest(times: Sequence[datetime], span: timedelta) -> tuple[int, int]:
    """The most raises within `span` (first to last inclusive) and the index of the first."""
    best, first, low = 0, 0, 0
    for high, at in enumerate(times):
        while at - times[low] > span:
            low += 1
        if high - low + 1 > best:
            best, first = high - low + 1, low
    return best, first


def _bursts(by_series: dict[str, list[datetime]], span: timedelta, least: int) -> list[Burst]:
    found = []
    for series, times in by_series.items():
        count, first = densest(times, span)
        if count >= least:
            found.append(Burst(series, count, times[first]))
    return sorted(found, key=lambda b: (-b.count, b.start, b.series))


def isa_figures(
    found: list[Episode], origin: datetime | None, until: datetime | None
) -> IsaFigures:
    """Figures of the episodes over the run from `origin` to `until` (None: the alerts' own span)."""
    if not found:
        return IsaFigures()
    raised = sorted(e.raised for e in found)
    start = min(origin, raised[0]) if origin else raised[0]
    end = max(until, raised[-1]) if until else raised[-1]
    windows = math.floor((end - start) / WINDOW) + 1
    counts = [0] * windows
    for at in raised:
        counts[math.floor((at - start) / WINDOW)] += 1
    by_series: dict[str, list[datetime]] = defaultdict(list)
    for episode in found:  # by raised time
        by_series[episode.series].append(episode.raised)
    return IsaFigures(
        alerts=len(raised),
        windows=windows,
        peak=max(counts),
        flood_windows=sum(1 for c in counts if c > FLOOD_ABOVE),
        chattering=_bursts(by_series, CHATTER_SPAN, CHATTER_COUNT),
        frequent=_bursts(by_series, WINDOW, FREQUENT_ABOVE + 1),
    )


def _worst(bursts: list[Burst], span: str) -> str:
    if not bursts:
        return "none"
    worst = bursts[0]
    return (
        f"{len(bursts)}, worst {worst.series}: {worst.count} within {span} "
        f"from {iso_utc(worst.start)}"
    )


def format_isa(figures: IsaFigures) -> list[str]:
    if not figures.alerts:
        return ["alert load (ISA-18.2): no alert raised"]
    return [
        f"alert load (ISA-18.2): {figures.alerts} alerts over {figures.windows} 10-min windows, "
        f"{figures.mean:.1f} per 10 min on average (target ~1, 2 at most), "
        f"peak {figures.peak} (target <= {FLOOD_ABOVE})",
        f"floods (> {FLOOD_ABOVE} alerts in 10 min): {figures.flood_windows} windows, "
        f"{figures.flood_percent:.1f} % of the time (target < 1 %)",
        f"chattering series (>= {CHATTER_COUNT} raised within 60 s): "
        f"{_worst(figures.chattering, '60 s')}",
        f"series raising > {FREQUENT_ABOVE} times in 10 min (target none): "
        f"{_worst(figures.frequent, '10 min')}",
    ]
