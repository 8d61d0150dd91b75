"""Correlation policies (deploy/alerting/correlation.yaml): when the same issue type on the same
machine class in several plants is one network incident.

    version: "2026-12-05.1"
    default:                        # issue types not listed (null: they never correlate)
      min_plants: 2
      min_machines: 2
      window_s: 1800
      hold_s: 600
    issue_types:
      vibration-instability: {min_plants: 2, window_s: 1800}
      comms-loss: null              # a network outage is not a machine pattern
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, model_validator

from plantmesh.config import ConfigError, ConfigModel, load_config
from plantmesh.contracts import Name


class Correlation(ConfigModel):
    min_plants: Annotated[int, Field(ge=1, le=1000)] = 2
    """Plants the issue must appear in, within the window, to open an incident."""
    min_machines: Annotated[int, Field(ge=1, le=100_000)] = 2
    """Machines of the class, across those plants, it must appear on."""
    window_s: Annotated[float, Field(gt=0, le=30 * 24 * 3600)] = 1800
    """How close together the members' alerts must be raised (event time); also how long
    after closing a recurrence reopens the incident instead of opening a new one."""
    hold_s: Annotated[float, Field(ge=0, le=7 * 24 * 3600)] = 600
    """How long every member must have stayed clear before the incident closes."""

    @model_validator(mode="after")
    def _enough_machines(self) -> Self:
        if self.min_machines < self.min_plants:
            raise ValueError(
                f"min_machines ({self.min_machines}) cannot be fewer than min_plants "
                f"({self.min_plants}): every plant counted has a machine"
            )
        return self

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_s)

    @property
    def hold(self) -> timedelta:
        return timedelta(seconds=self.hold_s)


class CorrelationConfig(ConfigModel):
    version: Annotated[str, Field(min_length=1, max_length=64)]
    default: Correlation | None = Field(default_factory=Correlation)
    issue_types: dict[Name, Correlation | None] = Field(default_factory=dict)

    def unknown_issue_types(self, known: Iterable[str]) -> list[str]:
        """Issue types the policy names that the catalogue does not have (a typo there would
        silently let that type correlate under the default)."""
        return sorted(set(self.issue_types) - set(known))

    def for_issue(self, issue_type: str) -> Correlation | None:
        """The policy of an issue type; None when it never makes a network incident."""
        if issue_type in self.issue_types:
            return self.issue_types[issue_type]
        return self.default


def load_correlation(path: Path | str, known: Iterable[str] | None = None) -> CorrelationConfig:
    """`known`: the catalogue's issue types; naming another is a configuration error."""
    config = load_config(CorrelationConfig, path)
    unknown = [] if known is None else config.unknown_issue_types(known)
    if unknown:
        raise ConfigError(
            path, [f"issue_types.{name}: not in the issue-type catalogue" for name in unknown]
        )
    return config
