"""What every rule is and the configuration every rule shares."""

from __future__ import annotations

from typing import Protocol

from pydantic import Field

from plantmesh.config import ConfigModel
from plantmesh.contracts import AlertEvent, Name, Quality, Reading, Severity


class Rule(Protocol):
    """One alerting rule. It keeps its own per-series state and decides in event time (the
    readings' source_ts), so the outcome never depends on when a reading is processed."""

    @property
    def name(self) -> str: ...

    @property
    def signals(self) -> frozenset[str]:
        """The signal names this rule looks at; the engine routes only those readings to it."""
        ...

    def evaluate(self, reading: Reading) -> list[AlertEvent]:
        """Feed one reading; return the alert events it causes (usually none)."""
        ...


class RuleConfigBase(ConfigModel):
    """Keys common to every rule type: its name, what it matches and how important it is."""

    name: Name
    signal: Name
    plants: list[Name] = Field(default_factory=list)
    """Only these plants; empty means every plant."""
    machines: list[Name] = Field(default_factory=list)
    """Only these machine ids (the last segment of the asset path); empty means every machine."""
    severity: Severity


class SeriesFilter:
    """The match part of a rule config, precomputed for the hot path."""

    def __init__(self, config: RuleConfigBase) -> None:
        self.signal = config.signal
        self._plants = frozenset(config.plants)
        self._machines = frozenset(config.machines)

    def matches(self, reading: Reading) -> bool:
        return (
            reading.signal == self.signal
            and (not self._plants or reading.asset.plant in self._plants)
            and (not self._machines or reading.asset.machine in self._machines)
        )


def is_bad(reading: Reading) -> bool:
    """Bad by either the quality field or the OPC UA status code it was derived from."""
    return (
        reading.quality is Quality.BAD
        or Quality.from_status_code(reading.status_code) is Quality.BAD
    )


def numeric(reading: Reading) -> float | None:
    """The reading's value as a number, or None for booleans and text."""
    value = reading.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
