"""The control charts of the SPC rule, on standardized readings z = (x - centre) / sigma.

- EWMA: E_i = lambda * z_i + (1 - lambda) * E_{i-1}, E_0 = 0; signals when |E_i| > L * sigma_i
  with the exact time-varying sigma_i^2 = lambda / (2 - lambda) * (1 - (1 - lambda)^(2i)), so the
  first points after learning are judged fairly (the asymptotic limit would be too wide early).
- CUSUM (tabular, two-sided): S+ = max(0, S+ + z - k), S- = max(0, S- - z - k); signals when
  either exceeds h. The sums are never reset on a signal or a clear (a reset during a sustained
  shift would make the alert flap); instead each sum is capped at `ceiling` * h. A cap above h
  changes nothing about when the chart first signals, only how long it takes to stop after the
  process is back: at most about (ceiling - 1) * h / k points.
- Western Electric rules: 1) one point beyond 3; 2) 2 of the last 3 beyond 2 on the same side;
  3) 4 of the last 5 beyond 1 on the same side; 4) the last 8 on the same side of the centre
  (z == 0 is on neither side). Rules 2 and 3 judge the points available right after learning.

The state is plain data (`to_dict` / `from_dict` round-trip exactly).
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

WE_HISTORY = 8
WE_NAMES = {
    1: "1 point beyond 3 sigma",
    2: "2 of 3 beyond 2 sigma, same side",
    3: "4 of 5 beyond 1 sigma, same side",
    4: "8 in a row on one side",
}


_WE_CHART = {rule: f"we{rule}" for rule in WE_NAMES}


def we_text(rules: Iterable[int]) -> str:
    """`1,2,3,4`: a rule list for evidence."""
    return ",".join(str(rule) for rule in sorted(rules))


def _beyond_same_side(window: list[float], limit: float, needed: int) -> bool:
    above = below = 0
    for z in window:  # one pass, no generators: this runs for every charted point
        if z > limit:
            above += 1
        elif z < -limit:
            below += 1
    return above >= needed or below >= needed


def western_electric(history: deque[float], rules: tuple[int, ...]) -> tuple[int, ...]:
    """The Western Electric rules (of `rules`) that the latest points break."""
    if len(history) == WE_HISTORY:
        return _western_electric_full(history, rules)
    return western_electric_any(list(history), rules)


def western_electric_any(points: list[float], rules: tuple[int, ...]) -> tuple[int, ...]:
    """The rules on a history of any length (the first points after a baseline): the plain
    form, which the written-out one for a full history must agree with."""
    fired: list[int] = []
    for rule in rules:
        if rule == 1:
            hit = bool(points) and abs(points[-1]) > 3.0
        elif rule == 2:
            hit = _beyond_same_side(points[-3:], 2.0, 2)
        elif rule == 3:
            hit = _beyond_same_side(points[-5:], 1.0, 4)
        else:
            run = points[-WE_HISTORY:]
            hit = len(run) == WE_HISTORY and (all(z > 0 for z in run) or all(z < 0 for z in run))
        if hit:
            fired.append(rule)
    return tuple(fired)


def _western_electric_full(history: deque[float], rules: tuple[int, ...]) -> tuple[int, ...]:
    """western_electric() on a full history, written out: it runs for every charted point, and
    the general form (slices, generators) cost more than the rest of the charts together."""
    z7, z6, z5, z4, z3, z2, z1, z0 = history  # oldest first: z0 is the latest point
    fired: list[int] = []
    for rule in rules:
        if rule == 1:
            hit = z0 > 3.0 or z0 < -3.0
        elif rule == 2:
            hit = (z0 > 2.0) + (z1 > 2.0) + (z2 > 2.0) >= 2 or (z0 < -2.0) + (z1 < -2.0) + (
                z2 < -2.0
            ) >= 2
        elif rule == 3:
            hit = (z0 > 1.0) + (z1 > 1.0) + (z2 > 1.0) + (z3 > 1.0) + (z4 > 1.0) >= 4 or (
                z0 < -1.0
            ) + (z1 < -1.0) + (z2 < -1.0) + (z3 < -1.0) + (z4 < -1.0) >= 4
        else:
            hit = (z0 > 0 and z1 > 0 and z2 > 0 and z3 > 0 and z4 > 0 and z5 > 0 and z6 > 0
                   and z7 > 0) or (z0 < 0 and z1 < 0 and z2 < 0 and z3 < 0 and z4 < 0
                   and z5 < 0 and z6 < 0 and z7 < 0)  # fmt: skip
        if hit:
            fired.append(rule)
    return tuple(fired)


@functools.cache
def ewma_sigmas(lam: float) -> tuple[float, ...]:
    """sigma_i of the EWMA for i = 0, 1, ... up to the first i where (1 - lambda)^(2i) no longer
    changes 1 - (1 - lambda)^(2i): from there on every sigma_i is that last value, exactly."""
    sigmas = []
    i = 0
    while True:
        decay = (1.0 - lam) ** (2 * i)
        sigmas.append(math.sqrt(lam / (2.0 - lam) * (1.0 - decay)))
        if 1.0 - decay == 1.0:
            return tuple(sigmas)
        i += 1


@dataclass(slots=True)
class ChartState:
    """The charts' memory for one series since its baseline."""

    n: int = 0
    """Points charted since the baseline (the EWMA's i)."""
    ewma: float = 0.0
    cusum_pos: float = 0.0
    cusum_neg: float = 0.0
    history: deque[float] = field(default_factory=lambda: deque(maxlen=WE_HISTORY))

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "ewma": self.ewma,
            "cusum_pos": self.cusum_pos,
            "cusum_neg": self.cusum_neg,
            "history": list(self.history),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChartState:
        history: deque[float] = deque((float(z) for z in data["history"]), maxlen=WE_HISTORY)
        return cls(
            int(data["n"]),
            float(data["ewma"]),
            float(data["cusum_pos"]),
            float(data["cusum_neg"]),
            history,
        )


@dataclass(slots=True)  # not frozen: one is made per charted point, and frozen costs 3x
class ChartStatus:
    """What the charts said at one reading: the statistics, their limits, and which signalled."""

    z: float
    n: int
    ewma: float
    ewma_limit: float
    cusum_pos: float
    cusum_neg: float
    we_fired: tuple[int, ...]
    fired: tuple[str, ...]
    """Names of the charts that signal: "ewma", "cusum", "we1".."we4"."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "z": self.z,
            "n": self.n,
            "ewma": self.ewma,
            "ewma_limit": self.ewma_limit,
            "cusum_pos": self.cusum_pos,
            "cusum_neg": self.cusum_neg,
            "we_fired": list(self.we_fired),
            "fired": list(self.fired),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChartStatus:
        return cls(
            float(data["z"]),
            int(data["n"]),
            float(data["ewma"]),
            float(data["ewma_limit"]),
            float(data["cusum_pos"]),
            float(data["cusum_neg"]),
            tuple(int(r) for r in data["we_fired"]),
            tuple(str(c) for c in data["fired"]),
        )


@dataclass(frozen=True, slots=True)
class Charts:
    """The chart parameters of one rule; `update` advances one series' state by one point."""

    ewma_on: bool = True
    ewma_lambda: float = 0.2
    ewma_l: float = 3.0
    cusum_on: bool = True
    cusum_k: float = 0.5
    cusum_h: float = 5.0
    cusum_ceiling: float = 2.0
    we_rules: tuple[int, ...] = (1, 2, 3, 4)

    def ewma_sigma(self, i: int) -> float:
        sigmas = ewma_sigmas(self.ewma_lambda)
        return sigmas[i] if i < len(sigmas) else sigmas[-1]

    def update(self, state: ChartState, z: float) -> ChartStatus:
        n = state.n = state.n + 1
        lam = self.ewma_lambda
        ewma = state.ewma = lam * z + (1.0 - lam) * state.ewma
        ewma_limit = self.ewma_l * self.ewma_sigma(n)
        cap, k, h = self.cusum_ceiling * self.cusum_h, self.cusum_k, self.cusum_h
        pos = state.cusum_pos + z - k
        pos = state.cusum_pos = cap if pos > cap else (pos if pos > 0.0 else 0.0)
        neg = state.cusum_neg - z - k
        neg = state.cusum_neg = cap if neg > cap else (neg if neg > 0.0 else 0.0)
        state.history.append(z)
        fired: tuple[str, ...] = ()
        if self.ewma_on and abs(ewma) > ewma_limit:
            fired = ("ewma",)
        if self.cusum_on and (pos > h or neg > h):
            fired += ("cusum",)
        we_fired = western_electric(state.history, self.we_rules)
        if we_fired:
            fired += tuple(_WE_CHART[rule] for rule in we_fired)
        return ChartStatus(z, n, ewma, ewma_limit, pos, neg, we_fired, fired)
