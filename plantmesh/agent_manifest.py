"""What an edge agent config publishes: which plant, machine, signal and unit, read from the
agent's YAML without the agent's code. Ingest and alerting check their asset registry against it
(plantmesh.registry_check) and may not import edge_agent, so this reads only the keys it needs
and leaves the rest of the file to `plantmesh agent check-config`.

Modbus devices publish their profile's registers (inline or a file relative to the config);
OPC UA `nodes` publish their signal, in their configured unit or, without one, in the unit the
server's EngineeringUnits property gives at run time. Browse roots are found on the server at run
time: they are listed, not expanded (`plantmesh agent check-config --connect` shows them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from plantmesh.config import ConfigError, load_config, resolve_relative
from plantmesh.contracts import Name
from plantmesh.modbus_profile import DeviceProfile, load_profile


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Node(_Lenient):
    area: Name
    line: Name
    machine: Name
    signal: Name
    unit: str | None = None


class _BrowseRoot(_Lenient):
    root: str


class _Device(_Lenient):
    area: Name
    line: Name
    machine: Name
    profile: str | DeviceProfile


class _Source(_Lenient):
    type: str
    name: str
    nodes: list[_Node] = Field(default_factory=list)
    browse: list[_BrowseRoot] = Field(default_factory=list)
    devices: list[_Device] = Field(default_factory=list)


class _AgentFile(_Lenient):
    gateway_id: str
    plant: Name
    sources: list[_Source]


@dataclass(frozen=True)
class Published:
    """One signal an agent publishes."""

    file: str
    source: str
    plant: str
    machine: str
    signal: str
    unit: str | None
    unit_from_server: bool = False
    """An OPC UA node without a configured unit: the server's EngineeringUnits decides."""

    @property
    def where(self) -> str:
        return f"{self.file}: {self.plant}/{self.machine}/{self.signal} (source {self.source})"


@dataclass
class AgentManifest:
    file: str
    gateway_id: str
    plant: str
    published: list[Published] = field(default_factory=list)
    browse_roots: list[tuple[str, str]] = field(default_factory=list)
    """(source, root) pairs whose signals only the server knows."""


def read_manifest(path: Path | str) -> AgentManifest:
    """What the agent config at `path` publishes. Raises ConfigError naming the file and key."""
    spec = load_config(_AgentFile, path)
    manifest = AgentManifest(str(path), spec.gateway_id, spec.plant)
    problems: list[str] = []
    for i, source in enumerate(spec.sources):
        for node in source.nodes:
            manifest.published.append(
                Published(
                    str(path),
                    source.name,
                    spec.plant,
                    node.machine,
                    node.signal,
                    node.unit,
                    unit_from_server=node.unit is None,
                )
            )
        manifest.browse_roots.extend((source.name, root.root) for root in source.browse)
        for j, device in enumerate(source.devices):
            profile = device.profile
            if not isinstance(profile, DeviceProfile):
                try:
                    profile = load_profile(resolve_relative(path, profile))
                except ConfigError as exc:
                    problems.append(f"sources[{i}].devices[{j}].profile: {exc}")
                    continue
            manifest.published.extend(
                Published(str(path), source.name, spec.plant, device.machine, r.signal, r.unit)
                for r in profile.registers
            )
    if problems:
        raise ConfigError(path, problems)
    return manifest
