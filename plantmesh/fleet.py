"""The fleet: every registered machine of every plant, with its class and optional attributes
(model, firmware, supplier, commissioning year, material lot...). It is the `plants.*.machines`
part of the asset registry file (ingest/normalize/registry.py reads the rest), shared here so
the alerting service can compare the machines of a network incident with those of the same
class that stayed quiet.

    plants:
      plant-a:
        machines:
          press-01: hydraulic_press             # machine -> class
          mill-01:                               # or a class with attributes
            class: cnc_mill
            attributes: {spindle_model: S-40, firmware: "2.1", commissioned: 2019}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from plantmesh.config import ConfigModel, load_config
from plantmesh.contracts import Name

AttributeValue = str | int | float | bool


class MachineEntry(ConfigModel):
    """A machine's class and what is known about it; attribute values are compared as text."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    machine_class: Annotated[str, Field(alias="class", min_length=1)]
    attributes: dict[Name, AttributeValue] = Field(default_factory=dict)


MachinesField = dict[str, str | MachineEntry]
"""Machine name -> its class, or its class with attributes."""


def class_of(entry: str | MachineEntry) -> str:
    return entry if isinstance(entry, str) else entry.machine_class


@dataclass(frozen=True)
class Machine:
    plant: str
    machine: str
    machine_class: str
    attributes: Mapping[str, str] = field(default_factory=dict)


class _Plant(BaseModel):
    model_config = ConfigDict(extra="ignore")
    machines: MachinesField = Field(default_factory=dict)


class _FleetFile(BaseModel):
    """Only what the fleet needs from a registry file; the rest is the writer's."""

    model_config = ConfigDict(extra="ignore")
    plants: dict[str, _Plant] = Field(default_factory=dict)


class Fleet:
    def __init__(self, machines: list[Machine]) -> None:
        self._machines = {(m.plant, m.machine): m for m in machines}
        self._by_class: dict[str, list[Machine]] = {}
        for machine in self._machines.values():
            self._by_class.setdefault(machine.machine_class, []).append(machine)

    @classmethod
    def from_plants(cls, plants: Mapping[str, MachinesField]) -> Fleet:
        found = []
        for plant, machines in plants.items():
            for name, entry in machines.items():
                attributes = {} if isinstance(entry, str) else entry.attributes
                found.append(
                    Machine(
                        plant,
                        name,
                        class_of(entry),
                        {k: _text(v) for k, v in sorted(attributes.items())},
                    )
                )
        return cls(found)

    @classmethod
    def load(cls, path: Path | str) -> Fleet:
        spec = load_config(_FleetFile, path)
        return cls.from_plants({name: plant.machines for name, plant in spec.plants.items()})

    def __iter__(self) -> Iterator[Machine]:
        return iter(self._machines.values())

    def __len__(self) -> int:
        return len(self._machines)

    def get(self, plant: str, machine: str) -> Machine | None:
        return self._machines.get((plant, machine))

    def of_class(self, machine_class: str) -> list[Machine]:
        return list(self._by_class.get(machine_class, ()))


def _text(value: AttributeValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
