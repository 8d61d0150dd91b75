"""What to do with each series, decided once: the registry's plan and the line-protocol series.

A plant sends the same few thousand series every few seconds, so the registry lookup, the unit
conversion it picks and the escaped tags of the line are worked out the first time a series
arrives and looked up after that, by the series as it arrives (names not yet normalized).
"""

from __future__ import annotations

import re

from ingest.line_protocol import LineProtocolError, reading_series
from ingest.normalize.registry import AssetRegistry, NormalizeError, Plan
from ingest.normalize.units import KNOWN_UNITS
from plantmesh.contracts import NAME_PATTERN
from plantmesh.dead_letters import Rejection
from plantmesh.topics import DlqReason

SeriesKey = tuple[str, str, str, str, str, str | None]
"""plant, area, line, machine, signal and unit of a reading as it arrives."""
SeriesPlan = tuple[Plan | None, str]
"""The registry's plan for a series (None: keep it as it is) and its `readings,<tags>` series."""

SERIES_CACHE_SIZE = 100_000
DEFAULT_MAX_SERIES_PER_PLANT = 50_000
_NAME = re.compile(NAME_PATTERN)
_NOT_NAMES = Rejection(DlqReason.SCHEMA_MISMATCH, "not a series of valid names")


class SeriesPlans:
    """Series plans by series key. `known` is the cache: look a key up there first and call
    `resolve` on a miss. Tags are bounded here: names by the contract, units by KNOWN_UNITS,
    and the series of each plant by `max_series_per_plant`."""

    def __init__(
        self,
        registry: AssetRegistry | None,
        max_series_per_plant: int = DEFAULT_MAX_SERIES_PER_PLANT,
    ) -> None:
        self.registry = registry
        self.known: dict[SeriesKey, SeriesPlan | Rejection] = {}
        self.max_series_per_plant = max_series_per_plant
        self.series_by_plant: dict[str, set[str]] = {}
        """Series each plant has written (outlives the cache, which is cleared when full)."""

    def resolve(self, key: SeriesKey) -> SeriesPlan | Rejection:
        """The plan of a key missing from `known`, cached there. A key whose parts are not valid
        names (the clean tier looks before checking) is refused and not cached, so `known`
        only ever holds series of valid names."""
        if not _is_valid(key):
            return _NOT_NAMES
        unit = key[5]
        if unit is not None and unit not in KNOWN_UNITS:
            shown = unit if len(unit) <= 40 else unit[:40] + "..."
            return Rejection(DlqReason.UNKNOWN_UNIT, f"unit {shown!r} is not a known unit")
        known = self.known
        if len(known) >= SERIES_CACHE_SIZE:
            known.clear()  # a flood of distinct series: start over, do not grow
        plan = known[key] = self._counted(key[0], self._plan(*key))
        return plan

    def _counted(self, plant: str, plan: SeriesPlan | Rejection) -> SeriesPlan | Rejection:
        """`plan`, unless its series is a new one beyond the plant's limit."""
        if isinstance(plan, Rejection):
            return plan
        series = self.series_by_plant.setdefault(plant, set())
        if plan[1] not in series:
            if len(series) >= self.max_series_per_plant:
                return Rejection(
                    DlqReason.SERIES_LIMIT,
                    f"plant {plant!r} has {len(series)} series already "
                    f"(writer.validation.max_series_per_plant)",
                )
            series.add(plan[1])
        return plan

    def _plan(
        self, plant: str, area: str, line: str, machine: str, signal: str, unit: str | None
    ) -> SeriesPlan | Rejection:
        try:
            plan = None
            if self.registry is not None:
                plan = self.registry.plan_for(plant, machine, signal, unit)
            if plan is not None:
                signal, unit = plan.signal, plan.unit
            return plan, reading_series(plant, area, line, machine, signal, unit or "")
        except NormalizeError as exc:
            return Rejection(exc.reason, str(exc))
        except LineProtocolError as exc:
            return Rejection(DlqReason.UNWRITABLE, str(exc))


def is_name(text: object) -> bool:
    """`text` is a plantmesh.contracts.Name."""
    return isinstance(text, str) and _NAME.fullmatch(text) is not None


def _is_valid(key: SeriesKey) -> bool:
    unit = key[5]
    return all(is_name(part) for part in key[:5]) and (unit is None or unit.__class__ is str)
