"""The asset registry: which local tag of which plant is which canonical signal of which machine
class, in which unit. The writer applies it to every reading before InfluxDB and
telemetry.normalized, so plants compare on the same terms.

    version: "2026-11.1"             # recorded on every normalized message (header)
    classes:                         # canonical signals per machine class, with their unit
      press: {signals: {bearing_temp: degC, vibration: mm/s, oil_pressure: bar, running: null}}
    plants:
      plant-us:
        machines:                    # machine -> class, or class with attributes
          press-01: press
          press-02: {class: press, attributes: {model: P-200, firmware: "4.2"}}
        tags:                        # per class: local tag -> canonical signal (+ source unit)
          press: {BRG_TEMP_F: {signal: bearing_temp, unit: degF}}
    unknown_plant: reject            # reject (DLQ) | pass (unchanged)
    unknown_machine: reject
    unknown_signal: pass

A reading's source unit is the tag mapping's `unit`, else the reading's own `unit`; a reading
without a unit is taken to be in the canonical unit already. Every conversion the registry names
is checked when it is loaded, so a typo fails at start rather than on live data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from ingest.checks.wire_schema import WireReading
from ingest.normalize.units import Conversion, UnitError, conversion, lookup
from plantmesh.config import ConfigModel, load_config
from plantmesh.contracts import Name, Reading
from plantmesh.fleet import MachinesField, class_of
from plantmesh.topics import DlqReason


class Policy(StrEnum):
    REJECT = "reject"
    PASS = "pass"


class MachineClass(ConfigModel):
    signals: dict[Name, str | None]
    """Canonical signal -> canonical unit (null: unitless, e.g. a state or a count)."""


class TagMapping(ConfigModel):
    signal: Name
    unit: str | None = None
    """The unit the plant's tag is in, when the reading itself does not say."""


class PlantEntry(ConfigModel):
    machines: MachinesField = Field(default_factory=dict)
    """Machine name -> machine class, or its class with attributes (plantmesh/fleet.py: the
    alerting service compares the machines of a network incident by them)."""
    tags: dict[str, dict[str, TagMapping]] = Field(default_factory=dict)
    """Machine class -> local tag -> canonical signal."""


class RegistryFile(ConfigModel):
    version: Annotated[str, Field(min_length=1, max_length=64)]
    classes: dict[str, MachineClass] = Field(default_factory=dict)
    plants: dict[str, PlantEntry] = Field(default_factory=dict)
    unknown_plant: Policy = Policy.REJECT
    unknown_machine: Policy = Policy.REJECT
    unknown_signal: Policy = Policy.PASS

    @model_validator(mode="after")
    def _consistent(self) -> RegistryFile:
        problems = self._unit_problems()
        for plant_name, plant in self.plants.items():
            where = f"plants.{plant_name}"
            for machine, entry in plant.machines.items():
                cls_name = class_of(entry)
                if cls_name not in self.classes:
                    problems.append(f"{where}.machines.{machine}: unknown class {cls_name!r}")
            for cls_name, tags in plant.tags.items():
                problems += self._tag_problems(f"{where}.tags.{cls_name}", cls_name, tags)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _unit_problems(self) -> list[str]:
        """Canonical units the unit table does not know."""
        problems = []
        for cls_name, cls in self.classes.items():
            for signal, unit in cls.signals.items():
                try:
                    if unit is not None:
                        lookup(unit)
                except UnitError as exc:
                    problems.append(f"classes.{cls_name}.signals.{signal}: {exc}")
        return problems

    def _tag_problems(self, where: str, cls_name: str, tags: dict[str, TagMapping]) -> list[str]:
        """Tags mapped to a signal their class does not have, or from a unit that does not
        convert to the signal's."""
        machine_class = self.classes.get(cls_name)
        if machine_class is None:
            return [f"{where}: unknown class"]
        problems = []
        for tag, mapping in tags.items():
            if mapping.signal not in machine_class.signals:
                problems.append(f"{where}.{tag}: {mapping.signal!r} is not a {cls_name} signal")
                continue
            target = machine_class.signals[mapping.signal]
            try:
                if mapping.unit is not None and target is not None:
                    conversion(mapping.unit, target)
            except UnitError as exc:
                problems.append(f"{where}.{tag}: {exc}")
        return problems


class NormalizeError(ValueError):
    """A reading the registry cannot place; `reason` is its DLQ reason."""

    def __init__(self, reason: DlqReason, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


@dataclass(frozen=True)
class _Target:
    signal: str
    unit: str | None
    source_unit: str | None


PLAN_CACHE_SIZE = 100_000


@dataclass(frozen=True)
class Plan:
    """How to rewrite readings of one plant, machine, signal and unit."""

    signal: str
    unit: str | None
    convert: Conversion | None

    def convert_value(
        self, signal: str, value: float | bool | str | None
    ) -> float | bool | str | None:
        if self.convert is None or value is None:  # None: a Bad reading, no value to convert
            return value
        if isinstance(value, bool | str):
            raise NormalizeError(
                DlqReason.UNIT_MISMATCH, f"{signal}: cannot convert {value!r} to {self.unit}"
            )
        converted = self.convert(value)
        if not math.isfinite(converted):
            raise NormalizeError(DlqReason.UNIT_MISMATCH, f"{signal}: {converted} after conversion")
        return converted

    def apply(self, reading: WireReading) -> WireReading:
        if "value" not in reading:  # a Bad reading: no value to convert, none to add
            return {**reading, "signal": self.signal, "unit": self.unit}
        value = self.convert_value(reading["signal"], reading["value"])
        return {**reading, "signal": self.signal, "unit": self.unit, "value": value}


class AssetRegistry:
    """The loaded registry, with lookups prepared for the per-reading hot path."""

    def __init__(self, spec: RegistryFile) -> None:
        self.spec = spec
        self.version = spec.version
        self._machines = {
            plant: {machine: class_of(e) for machine, e in entry.machines.items()}
            for plant, entry in spec.plants.items()
        }
        self._targets: dict[tuple[str, str, str], _Target] = {}
        for plant, entry in spec.plants.items():
            for cls_name, tags in entry.tags.items():
                units = spec.classes[cls_name].signals
                for tag, mapping in tags.items():
                    self._targets[(plant, cls_name, tag)] = _Target(
                        mapping.signal, units[mapping.signal], mapping.unit
                    )
        self._plans: dict[tuple[str, str, str, str | None], Plan | NormalizeError | None] = {}

    @classmethod
    def load(cls, path: Path | str) -> AssetRegistry:
        return cls(load_config(RegistryFile, path))

    def normalize(self, reading: Reading) -> Reading:
        """One Reading model with canonical signal, unit and value; raises NormalizeError. For
        tools and tests: the writer's hot path takes `plan_for` once per series through
        ingest.checks.series and applies the plan to plain dicts."""
        asset = reading.asset
        plan = self.plan_for(asset.plant, asset.machine, reading.signal, reading.unit)
        if plan is None:
            return reading
        value = plan.convert_value(reading.signal, reading.value)
        return reading.model_copy(update={"signal": plan.signal, "unit": plan.unit, "value": value})

    def machine_class(self, plant: str, machine: str) -> str | None:
        """The class the registry gives this machine, None when it is not registered."""
        machines = self._machines.get(plant)
        return None if machines is None else machines.get(machine)

    def plan_for(self, plant: str, machine: str, signal: str, unit: str | None) -> Plan | None:
        """What to do with readings of this plant, machine, signal and unit (None: nothing);
        decided once per combination. Raises NormalizeError for readings to reject."""
        key = (plant, machine, signal, unit)
        try:
            plan = self._plans[key]
        except KeyError:
            if len(self._plans) >= PLAN_CACHE_SIZE:
                self._plans.clear()  # a flood of distinct keys: start over rather than grow
            plan = self._plans[key] = self._plan(*key)
        if isinstance(plan, NormalizeError):
            raise NormalizeError(plan.reason, str(plan))
        return plan

    def _plan(
        self, plant: str, machine: str, signal: str, unit: str | None
    ) -> Plan | NormalizeError | None:
        """What to do with every reading of this plant, machine, signal and unit: decided once."""
        machines = self._machines.get(plant)
        if machines is None:
            if self.spec.unknown_plant is Policy.PASS:
                return None
            return NormalizeError(DlqReason.UNKNOWN_PLANT, f"plant {plant!r} is not registered")
        cls_name = machines.get(machine)
        if cls_name is None:
            if self.spec.unknown_machine is Policy.PASS:
                return None
            return NormalizeError(
                DlqReason.UNKNOWN_MACHINE,
                f"machine {machine!r} of plant {plant!r} is not registered",
            )
        target = self._targets.get((plant, cls_name, signal))
        if target is None:
            units = self.spec.classes[cls_name].signals
            if signal not in units:
                if self.spec.unknown_signal is Policy.PASS:
                    return None
                return NormalizeError(
                    DlqReason.UNKNOWN_SIGNAL,
                    f"signal {signal!r} is neither a tag of {plant!r} nor a {cls_name} signal",
                )
            target = _Target(signal, units[signal], None)
        source_unit = target.source_unit or unit
        convert: Conversion | None = None
        if target.unit is not None and source_unit is not None and source_unit != target.unit:
            try:
                found = conversion(source_unit, target.unit)
            except UnitError as exc:
                return NormalizeError(DlqReason.UNIT_MISMATCH, f"{signal}: {exc}")
            convert = None if found.identity else found
        new_unit = target.unit if target.unit is not None else unit
        if target.signal == signal and new_unit == unit and convert is None:
            return None
        return Plan(target.signal, new_unit, convert)
