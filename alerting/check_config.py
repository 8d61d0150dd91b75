"""`plantmesh alerting check-config --config FILE [--registry FILE] [--agent AGENT_CONFIG ...]`:
beyond the config itself, the asset registry against what the agents publish (the same check as
`plantmesh ingest check-config`, plantmesh.registry_check), and each rule's plants, machines,
machine classes and signal against what the registry and the agents name: a rule watching a
signal nobody sends never fires."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alerting.config import AlertingConfig
from plantmesh.agent_manifest import AgentManifest, read_manifest
from plantmesh.config import ConfigError
from plantmesh.fleet import class_of
from plantmesh.registry_check import (
    RegistryView,
    browse_notes,
    check_published,
    load_registry_view,
    split,
)


def check_against(
    config: AlertingConfig,
    config_path: Path | str,
    registry_path: Path | None,
    agents: Sequence[Path],
) -> tuple[list[str], list[str]]:
    """(report lines, problems)."""
    lines: list[str] = []
    problems: list[str] = []
    registry: RegistryView | None = None
    if registry_path is not None:
        try:
            registry = load_registry_view(registry_path)
            lines.append(f"registry {registry_path}: {len(registry.plants)} plant(s)")
        except ConfigError as exc:
            problems.append(str(exc))
    manifests: list[AgentManifest] = []
    for path in agents:
        try:
            manifests.append(read_manifest(path))
        except ConfigError as exc:
            problems.append(str(exc))
    for manifest in manifests:
        lines.append(
            f"agent {manifest.file}: gateway {manifest.gateway_id}, plant {manifest.plant}, "
            f"{len(manifest.published)} signals"
        )
    if registry is not None or manifests:
        name = str(registry_path) if registry_path else "the registry"
        fatal, warnings = split(check_published(manifests, registry, name))
        problems += fatal
        lines += [f"warning: {warning}" for warning in warnings]
        problems += _rule_problems(config, str(config_path), registry, manifests)
        lines += [f"note: {note}" for note in browse_notes(manifests)]
    return lines, problems


def _rule_problems(
    config: AlertingConfig, file: str, registry: RegistryView | None, manifests: list[AgentManifest]
) -> list[str]:
    plants = {m.plant for m in manifests}
    machines = {p.machine for m in manifests for p in m.published}
    signals = {p.signal for m in manifests for p in m.published}
    classes: set[str] | None = None
    if registry is not None:
        plants |= set(registry.plants)
        machines |= {name for plant in registry.plants.values() for name in plant.machines}
        signals |= {s for cls in registry.classes.values() for s in cls.signals}
        classes = set(registry.classes) | {
            class_of(e) for plant in registry.plants.values() for e in plant.machines.values()
        }
    # Browse roots publish signals only the server knows: the signal check would guess.
    check_signals = not any(m.browse_roots for m in manifests)
    problems = []
    for index, rule in enumerate(config.rules):
        where = f"{file}: rules[{index}] ({rule.name})"
        for plant in rule.plants:
            if plant not in plants:
                problems.append(f"{where}: plant {plant!r} is neither registered nor published")
        for machine in rule.machines:
            if machine not in machines:
                problems.append(f"{where}: machine {machine!r} is neither registered nor published")
        for machine_class in rule.machine_classes:
            if classes is not None and machine_class not in classes:
                problems.append(f"{where}: machine class {machine_class!r} is not in the registry")
        if check_signals and rule.signal not in signals:
            problems.append(
                f"{where}: signal {rule.signal!r} is neither a registry signal nor published "
                "by the agents given (the rule never fires)"
            )
    return problems
