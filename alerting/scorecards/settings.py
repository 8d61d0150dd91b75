"""Who watches what: the operator positions of each plant, for alarm load per position."""

from __future__ import annotations

from pydantic import Field

from plantmesh.config import ConfigModel
from plantmesh.contracts import Name

ANY_LINE = "*"


class ScorecardSettings(ConfigModel):
    positions: dict[Name, dict[Name, list[str]]] = Field(default_factory=dict)
    """plant -> position -> the lines it watches (`*`: every line no other position names).
    A plant not listed is one position; a line no position names counts as the plant's own."""

    def position_of(self, plant: str, line: str) -> str:
        named = self.positions.get(plant, {})
        for position, lines in named.items():
            if line in lines:
                return position
        for position, lines in named.items():
            if ANY_LINE in lines:
                return position
        return plant

    def positions_of(self, plant: str) -> list[str]:
        return list(self.positions.get(plant, {})) or [plant]
