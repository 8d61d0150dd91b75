"""`plantmesh ingest check-config CONFIG [--agent AGENT_CONFIG ...]`: validate the ingest config and
its asset registry, then check the registry against what the given agents publish."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ingest.config import IngestConfig, load_ingest_config
from ingest.normalize.registry import AssetRegistry
from plantmesh.agent_manifest import AgentManifest, read_manifest
from plantmesh.config import ConfigError
from plantmesh.registry_check import browse_notes, check_published, load_registry_view, split


def check(config_path: Path, agent_paths: Sequence[Path]) -> tuple[list[str], list[str]]:
    """(report lines, problems). Problems name their file and plant/machine/signal."""
    problems: list[str] = []
    lines: list[str] = []
    config: IngestConfig | None = None
    try:
        config = load_ingest_config(config_path)
    except ConfigError as exc:
        problems.append(str(exc))
    registry_path = None if config is None else config.writer.registry
    registry_ok = registry_path is not None
    if config is not None:
        lines.append(f"{config_path}: ok")
        lines.append(f"  mqtt {config.mqtt.url}, kafka {config.kafka.bootstrap}")
        lines.append(f"  influxdb {config.influxdb.url}, bucket {config.influxdb.bucket}")
        if registry_path is None:
            lines.append("  no asset registry (writer.registry): readings pass unchanged")
    if registry_path is not None:
        try:
            registry = AssetRegistry.load(registry_path)
            lines.append(f"  registry {registry_path}: version {registry.version}")
        except (ConfigError, OSError) as exc:
            problems.append(f"writer.registry: {exc}")
            registry_ok = False
    manifests: list[AgentManifest] = []
    for path in agent_paths:
        try:
            manifest = read_manifest(path)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        manifests.append(manifest)
        lines.append(
            f"  agent {path}: gateway {manifest.gateway_id}, plant {manifest.plant}, "
            f"{len(manifest.published)} signals"
        )
    if config is not None and (registry_ok or registry_path is None):
        view = None if registry_path is None else load_registry_view(registry_path)
        name = "the registry" if registry_path is None else str(registry_path)
        fatal, warnings = split(check_published(manifests, view, name))
        problems += fatal
        lines += [f"  warning: {warning}" for warning in warnings]
        lines += [f"  note: {note}" for note in browse_notes(manifests)]
    return lines, problems
