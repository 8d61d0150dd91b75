"""Does the asset registry know everything the agents publish? The check behind `plantmesh ingest
check-config` and `plantmesh alerting check-config`: each plant, machine, signal and unit an agent
config publishes (plantmesh.agent_manifest) that the writer would dead-letter is a problem, one it
would pass through unnormalized (the registry's `pass` policy, as a first-run registry has) is a
warning; each is named with its file and plant/machine/signal.

The registry is read here as the writer resolves it (ingest/normalize/registry.py: tag mapping of
the machine's class, else the class's own signal; the tag's unit, else the reading's, converted to
the class's unit), through a lenient view of the file, because alerting may not import ingest.
`plantmesh ingest check-config` validates the registry file itself in full first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from plantmesh.agent_manifest import AgentManifest, Published
from plantmesh.config import load_config
from plantmesh.fleet import MachinesField, class_of
from plantmesh.units import KNOWN_UNITS, UnitError, conversion


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Class(_Lenient):
    signals: dict[str, str | None] = Field(default_factory=dict)


class _Tag(_Lenient):
    signal: str
    unit: str | None = None


class _Plant(_Lenient):
    machines: MachinesField = Field(default_factory=dict)
    tags: dict[str, dict[str, _Tag]] = Field(default_factory=dict)


class RegistryView(_Lenient):
    """The parts of the registry file that decide where a reading goes."""

    classes: dict[str, _Class] = Field(default_factory=dict)
    plants: dict[str, _Plant] = Field(default_factory=dict)
    unknown_plant: str = "reject"
    unknown_machine: str = "reject"
    unknown_signal: str = "pass"


def load_registry_view(path: Path | str) -> RegistryView:
    return load_config(RegistryView, path)


@dataclass(frozen=True)
class Finding:
    where: str
    problem: str
    fatal: bool = True
    """False when the writer stores the readings anyway (unnormalized, by a `pass` policy)."""

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


def _fate(policy: str) -> str:
    return "the writer dead-letters its readings" if policy == "reject" else "passed unnormalized"


def check_published(
    manifests: list[AgentManifest], registry: RegistryView | None, registry_name: str = "registry"
) -> list[Finding]:
    """Every problem of every published signal (without a registry: only unknown units)."""
    findings: list[Finding] = []
    for manifest in manifests:
        for item in manifest.published:
            findings += _check_one(item, registry, registry_name)
    return findings


def _check_one(item: Published, registry: RegistryView | None, name: str) -> list[Finding]:
    found: list[Finding] = []
    if item.unit is not None and item.unit not in KNOWN_UNITS:
        found.append(
            Finding(item.where, f"unknown unit {item.unit!r} (the writer dead-letters it)")
        )
    if registry is None:
        return found
    plant = registry.plants.get(item.plant)
    if plant is None:
        fate, fatal = _fate(registry.unknown_plant), registry.unknown_plant == "reject"
        problem = f"unknown plant {item.plant!r} in {name} ({fate})"
        return [*found, Finding(item.where, problem, fatal)]
    entry = plant.machines.get(item.machine)
    if entry is None:
        fate, fatal = _fate(registry.unknown_machine), registry.unknown_machine == "reject"
        problem = f"unknown machine {item.machine!r} of plant {item.plant!r} in {name} ({fate})"
        return [*found, Finding(item.where, problem, fatal)]
    class_name = class_of(entry)
    machine_class = registry.classes.get(class_name)
    if machine_class is None:
        return [*found, Finding(item.where, f"class {class_name!r} is not in {name}'s classes")]
    tag = plant.tags.get(class_name, {}).get(item.signal)
    target, source_unit = (tag.signal, tag.unit or item.unit) if tag else (item.signal, item.unit)
    if target not in machine_class.signals:
        fate, fatal = _fate(registry.unknown_signal), registry.unknown_signal == "reject"
        problem = (
            f"unknown signal {item.signal!r}: neither a tag of {item.plant!r} nor a "
            f"{class_name} signal in {name} ({fate})"
        )
        return [*found, Finding(item.where, problem, fatal)]
    canonical = machine_class.signals[target]
    if canonical is not None and source_unit is not None and source_unit in KNOWN_UNITS:
        try:
            conversion(source_unit, canonical)
        except UnitError as exc:
            found.append(Finding(item.where, f"{exc} (the writer dead-letters it)"))
    return found


def split(findings: list[Finding]) -> tuple[list[str], list[str]]:
    """(problems, warnings) as text: what fails the check, and what only deserves a look."""
    return [str(f) for f in findings if f.fatal], [str(f) for f in findings if not f.fatal]


def browse_notes(manifests: list[AgentManifest]) -> list[str]:
    """The browse roots whose signals only the server knows (not checked offline)."""
    return [
        f"{m.file}: source {source} browses {root!r}: its signals are found on the server at "
        "run time and not checked here (plantmesh agent check-config --connect lists them)"
        for m in manifests
        for source, root in m.browse_roots
    ]
