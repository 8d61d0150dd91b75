"""The edge agent's configuration: one YAML file per gateway (see deploy/agent/sample.yaml).

Modbus device profiles may be given inline or as a path relative to the config file;
`load_agent_config` replaces every path with the loaded profile, so the rest of the agent only
ever sees `DeviceProfile` objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from asyncua import ua
from asyncua.ua.uaerrors import UaError
from pydantic import Field, field_validator, model_validator

from plantmesh.config import ConfigError, ConfigModel, load_config, resolve_relative
from plantmesh.connections import MqttConnection
from plantmesh.contracts import Name
from plantmesh.modbus_profile import DeviceProfile, load_profile

PositiveSeconds = Annotated[float, Field(gt=0)]
# Kafka topic names derive from the namespace too, so it keeps to what Kafka allows.
Namespace = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{0,64}$")]


class OpcUaNodeConfig(ConfigModel):
    """One explicitly listed variable and where its readings belong."""

    node_id: Annotated[str, Field(min_length=1)]
    """Any OPC UA node id string, e.g. `ns=2;s=Press1.Temperature` or `ns=3;i=1042`."""
    area: Name
    line: Name
    machine: Name
    signal: Name
    unit: str | None = None
    """Overrides the variable's EngineeringUnits property when set."""

    @field_validator("node_id")
    @classmethod
    def _check_node_id(cls, value: str) -> str:
        try:
            ua.NodeId.from_string(value)
        except (UaError, ValueError):
            raise ValueError(
                "expected an OPC UA node id such as ns=2;s=Name or ns=3;i=1042"
            ) from None
        return value


class BrowseRootConfig(ConfigModel):
    root: Annotated[str, Field(min_length=1)]
    """Browse names under Objects separated by `/` (e.g. `plant-a` or `Site/plant-a`). Below it
    the folders are area / line / machine and each machine's Variables are its signals."""

    @property
    def path(self) -> list[str]:
        return [part for part in self.root.split("/") if part]


class OpcUaSourceConfig(ConfigModel):
    type: Literal["opcua"]
    name: Name
    endpoint: str
    publishing_interval_ms: Annotated[float, Field(gt=0)] = 100.0
    sampling_interval_ms: Annotated[float, Field(ge=0)] = 0.0
    """0 asks the server to sample as fast as the value changes."""
    queue_size: Annotated[int, Field(ge=1, le=100_000)] = 100
    """Values the server keeps per item between two publishes, so fast changes are not lost."""
    request_timeout_s: PositiveSeconds = 4.0
    browse: list[BrowseRootConfig] = Field(default_factory=list)
    nodes: list[OpcUaNodeConfig] = Field(default_factory=list)

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        if not value.startswith("opc.tcp://") or len(value) <= len("opc.tcp://"):
            raise ValueError("expected opc.tcp://host:port[/path]")
        return value

    @model_validator(mode="after")
    def _something_to_read(self) -> OpcUaSourceConfig:
        if not self.browse and not self.nodes:
            raise ValueError("give at least one `browse` root or one entry in `nodes`")
        return self


class ModbusDeviceConfig(ConfigModel):
    unit_id: Annotated[int, Field(ge=0, le=255)]
    profile: str | DeviceProfile
    """A profile file (relative to this config file) or the profile itself, inline."""
    area: Name
    line: Name
    machine: Name
    poll_interval_s: PositiveSeconds = 1.0
    on_change: bool = False
    """True publishes a value only when it differs from the last one published (report by
    exception); false publishes every poll."""

    @property
    def device_profile(self) -> DeviceProfile:
        if not isinstance(self.profile, DeviceProfile):
            raise RuntimeError(
                f"profile {self.profile!r} was not loaded: use load_agent_config or resolve_profiles"
            )
        return self.profile


class ModbusSourceConfig(ConfigModel):
    type: Literal["modbus"]
    name: Name
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    timeout_s: PositiveSeconds = 1.0
    """How long one request may take before the poll counts as failed."""
    devices: Annotated[list[ModbusDeviceConfig], Field(min_length=1)]


SourceConfig = Annotated[OpcUaSourceConfig | ModbusSourceConfig, Field(discriminator="type")]


class BufferConfig(ConfigModel):
    """Unacknowledged batches kept for republishing. Past either limit the oldest are dropped
    (and counted in the health message)."""

    max_batches: Annotated[int, Field(ge=1)] = 10_000
    max_mib: Annotated[float, Field(gt=0)] = 64.0
    """Encoded size of all kept batches, in MiB."""


class AgentConfig(ConfigModel):
    gateway_id: Name
    plant: Name
    namespace: Namespace = ""
    """Topic namespace (plantmesh.topics.Topics): lets deployments share one broker."""
    mqtt: MqttConnection = Field(default_factory=MqttConnection)
    publish_interval_s: PositiveSeconds = 0.5
    """Readings are batched per machine for this long, then published as one message each."""
    health_interval_s: PositiveSeconds = 10.0
    queue_size: Annotated[int, Field(ge=1)] = 100_000
    """Readings waiting to be batched; when full, new readings are dropped (counted)."""
    max_readings_per_batch: Annotated[int, Field(ge=1)] = 1000
    shutdown_timeout_s: PositiveSeconds = 5.0
    """On SIGTERM: how long to wait for the broker to acknowledge what is still unsent."""
    buffer: BufferConfig = Field(default_factory=BufferConfig)
    sources: Annotated[list[SourceConfig], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_source_names(self) -> AgentConfig:
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise ValueError(f"source name {source.name!r} is used twice")
            seen.add(source.name)
        return self


def resolve_profiles(config: AgentConfig, base_file: Path | str) -> AgentConfig:
    """Load every Modbus profile given as a path (relative to `base_file`) in place."""
    problems: list[str] = []
    for i, source in enumerate(config.sources):
        if not isinstance(source, ModbusSourceConfig):
            continue
        for j, device in enumerate(source.devices):
            if isinstance(device.profile, DeviceProfile):
                continue
            path = resolve_relative(base_file, device.profile)
            try:
                device.profile = load_profile(path)
            except ConfigError as exc:
                problems.append(f"sources[{i}].devices[{j}].profile: {exc}")
    if problems:
        raise ConfigError(base_file, problems)
    return config


def load_agent_config(path: Path | str) -> AgentConfig:
    """Read and validate an agent config file, profiles included. Raises ConfigError naming the
    file, the key and what was expected."""
    return resolve_profiles(load_config(AgentConfig, path), path)
