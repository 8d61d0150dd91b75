"""A plant's scorecard over a period: the same formulas for every plant, after ISA-18.2 and
EEMUA 191. Pure: alarms' facts in, figures out.

- Load counts alarms annunciated (opened) in [start, end) per operator position: a position
  is a console an operator watches (settings map lines to positions; by default a plant is
  one position). Windows are fixed 10-minute windows from the period's start.
  Per hour and per 10 minutes are averages over the positions; the peak is the busiest
  window of any position. ISA-18.2: about 1 per 10 minutes is manageable (6 per hour).
- Flood: a window with 10 or more alarms at one position; its share is the flooded share of
  the positions' windows (time in flood).
- Chattering: a series (rule on one signal) raised 3 or more times within 60 s.
- Stale: active (condition present) for more than 24 h at some time in the period.
- Priority distribution against 80 / 15 / 5 % (low / medium / high and critical together);
  its deviation is the sum of the absolute differences, in percentage points.
- Bad actors: the share of alarms from the 10 series with the most alarms.
- Time to acknowledge (first acknowledgement or resolution) and time to resolve (back to
  normal), p50 and p90 of the alarms opened in the period that got there (linear
  interpolation between ranks).
- Acknowledged in time: of the annunciated alarms opened in the period, the share answered
  within their policy's first level's time; escalated: the share told past the first level.
- Shelving: shelvings begun in the period, and shelved time inside it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel

from alerting.scorecards.facts import AlarmFacts

WINDOW = timedelta(minutes=10)
FLOOD_AT = 10
"""Alarms in a 10-minute window at one position: a flood (EEMUA 191, ISA-18.2)."""
CHATTER_SPAN = timedelta(seconds=60)
CHATTER_COUNT = 3
STALE_AFTER = timedelta(hours=24)
BAD_ACTORS = 10
PRIORITY_TARGET = {"low": 80.0, "medium": 15.0, "high": 5.0}
"""ISA-18.2's usual distribution; our `high` and `critical` together are its top band."""


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"a period must end after it starts: {self.start} .. {self.end}")

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600

    @property
    def windows(self) -> int:
        return max(1, math.ceil((self.end - self.start) / WINDOW))

    def holds(self, when: datetime) -> bool:
        return self.start <= when < self.end

    def split(self, buckets: int) -> list[Period]:
        """`buckets` equal periods one after another (a trend's points)."""
        step = (self.end - self.start) / buckets
        return [Period(self.start + step * i, self.start + step * (i + 1)) for i in range(buckets)]


PositionOf = Callable[[str, str], str]
"""(plant, line) -> the operator position that watches it."""


class PlantScorecard(BaseModel):
    plant: str
    positions: int
    alarms: int
    alarms_per_position_hour: float
    alarms_per_position_10min: float
    peak_10min: int
    flood_time_pct: float
    chattering_series: int
    chattering_alarms_pct: float | None
    stale_alarms: int
    priority_pct: dict[str, float]
    priority_deviation_pts: float | None
    bad_actor_pct: float | None
    tta_p50_s: float | None
    tta_p90_s: float | None
    ttr_p50_s: float | None
    ttr_p90_s: float | None
    acked_in_time_pct: float | None
    escalated_pct: float | None
    shelvings: int
    shelved_s: float
    completeness_pct: float | None = None
    """From the ingest ledger (alerting/scorecards/ledger.py), set by the caller."""


def scorecard(
    plant: str,
    facts: Sequence[AlarmFacts],
    period: Period,
    position_of: PositionOf,
    positions: Iterable[str] = (),
) -> PlantScorecard:
    """`facts`: this plant's alarms that overlap the period (opened before its end, not closed
    before its start); `positions`: the plant's configured positions, busy or not."""
    opened = sorted((f for f in facts if period.holds(f.opened_at)), key=lambda f: f.opened_at)
    per_position: dict[str, list[AlarmFacts]] = {p: [] for p in positions}
    for fact in opened:
        per_position.setdefault(position_of(plant, fact.line), []).append(fact)
    count = max(1, len(per_position))
    windows = [_window_counts(alarms, period) for alarms in per_position.values()]
    flooded = sum(1 for counts in windows for n in counts.values() if n >= FLOOD_AT)
    chattering = _chattering(opened)
    chatter_alarms = sum(1 for f in opened if f.series in chattering)
    annunciated = [f for f in opened if f.annunciated]
    timed = [f for f in annunciated if f.ack_within_s is not None]
    return PlantScorecard(
        plant=plant,
        positions=count,
        alarms=len(opened),
        alarms_per_position_hour=round(len(opened) / count / period.hours, 3),
        alarms_per_position_10min=round(len(opened) / count / period.windows, 3),
        peak_10min=max((n for counts in windows for n in counts.values()), default=0),
        flood_time_pct=round(100 * flooded / (count * period.windows), 2),
        chattering_series=len(chattering),
        chattering_alarms_pct=_pct(chatter_alarms, len(opened)),
        stale_alarms=sum(1 for f in facts if _stale(f, period)),
        priority_pct=_priorities(opened),
        priority_deviation_pts=_deviation(opened),
        bad_actor_pct=_bad_actors(opened),
        tta_p50_s=percentile(_durations(opened, lambda f: f.answered_at), 50),
        tta_p90_s=percentile(_durations(opened, lambda f: f.answered_at), 90),
        ttr_p50_s=percentile(_durations(opened, lambda f: f.closed_at), 50),
        ttr_p90_s=percentile(_durations(opened, lambda f: f.closed_at), 90),
        acked_in_time_pct=_pct(sum(1 for f in timed if _in_time(f)), len(timed)),
        escalated_pct=_pct(sum(1 for f in annunciated if f.escalated_at), len(annunciated)),
        shelvings=sum(1 for f in facts for s in f.shelvings if period.holds(s.start)),
        shelved_s=round(sum(_shelved_s(f, period) for f in facts), 3),
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 3)


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100 * part / whole, 2)


def _window_counts(alarms: Sequence[AlarmFacts], period: Period) -> Counter[int]:
    return Counter(int((f.opened_at - period.start) / WINDOW) for f in alarms)


def _chattering(opened: Sequence[AlarmFacts]) -> set[tuple[str, str, str, str]]:
    times: dict[tuple[str, str, str, str], list[datetime]] = defaultdict(list)
    for fact in opened:  # in time order
        times[fact.series].append(fact.opened_at)
    found = set()
    for series, raised in times.items():
        span = CHATTER_COUNT - 1
        if any(raised[i + span] - raised[i] <= CHATTER_SPAN for i in range(len(raised) - span)):
            found.add(series)
    return found


def _stale(fact: AlarmFacts, period: Period) -> bool:
    """Active for over 24 h at some instant of the period."""
    since = max(period.start, fact.opened_at + STALE_AFTER)
    until = period.end if fact.cleared_at is None else min(period.end, fact.cleared_at)
    return since < until


def _band(priority: str) -> str:
    return "high" if priority in ("high", "critical") else priority


def _priorities(opened: Sequence[AlarmFacts]) -> dict[str, float]:
    bands = Counter(_band(f.priority) for f in opened)
    return {band: _pct(bands[band], len(opened)) or 0.0 for band in PRIORITY_TARGET}


def _deviation(opened: Sequence[AlarmFacts]) -> float | None:
    if not opened:
        return None
    shares = _priorities(opened)
    return round(sum(abs(shares[b] - target) for b, target in PRIORITY_TARGET.items()), 2)


def _bad_actors(opened: Sequence[AlarmFacts]) -> float | None:
    counts = Counter(f.series for f in opened)
    top = sum(n for _, n in counts.most_common(BAD_ACTORS))
    return _pct(top, len(opened))


def _durations(
    opened: Sequence[AlarmFacts], end: Callable[[AlarmFacts], datetime | None]
) -> list[float]:
    return [(when - f.opened_at).total_seconds() for f in opened if (when := end(f)) is not None]


def _in_time(fact: AlarmFacts) -> bool:
    if fact.answered_at is None or fact.ack_within_s is None:
        return False
    return (fact.answered_at - fact.opened_at).total_seconds() <= fact.ack_within_s


def _shelved_s(fact: AlarmFacts, period: Period) -> float:
    total = 0.0
    for shelf in fact.shelvings:
        start = max(shelf.start, period.start)
        end = period.end if shelf.end is None else min(shelf.end, period.end)
        total += max(0.0, (end - start).total_seconds())
    return total
