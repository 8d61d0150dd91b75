"""Deterministic noise sources for the machine models (each draws from the machine's own RNG)."""

from __future__ import annotations

import math
import random


class SmoothNoise:
    """Ornstein-Uhlenbeck noise: wanders smoothly around 0 with standard deviation `sigma` and
    forgets its past over `tau_s` seconds, so consecutive values are close but never equal."""

    def __init__(self, rng: random.Random, sigma: float, tau_s: float, dt: float) -> None:
        self._rng = rng
        self._keep = math.exp(-dt / tau_s)
        self._kick = sigma * math.sqrt(1.0 - self._keep**2)
        self.value = rng.gauss(0.0, sigma)

    def step(self) -> float:
        self.value = self.value * self._keep + self._kick * self._rng.gauss(0.0, 1.0)
        return self.value


def lag_factor(dt: float, tau_s: float) -> float:
    """The fraction of the gap a first-order lag closes in one step of `dt` seconds."""
    return 1.0 - math.exp(-dt / tau_s)
