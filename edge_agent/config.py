"""The edge agent's configuration: one YAML file per gateway (see deploy/agent/sample.yaml).

Modbus device profiles may be given inline or as a path relative to the config file;
`load_agent_config` replaces every path with the loaded profile, so the rest of the agent only
ever sees `DeviceProfile` objects.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from plantmesh.config import ConfigError, ConfigModel, load_config, resolve_relative
from plantmesh.connections import MetricsEndpoint, MqttConnection
from plantmesh.contracts import Name
from plantmesh.modbus_profile import DeviceProfile, load_profile
from plantmesh.topics import Namespace

PositiveSeconds = Annotated[float, Field(gt=0)]
# Kafka topic names derive from the namespace too, so it keeps to what Kafka allows.


class Deadband(ConfigModel):
    """Report a change only when it exceeds this (OPC UA DataChangeFilter)."""

    type: Literal["absolute", "percent"]
    value: Annotated[float, Field(ge=0)]
    """Engineering units for `absolute`; percent of the variable's EURange for `percent`."""

    @model_validator(mode="after")
    def _check_percent(self) -> Deadband:
        if self.type == "percent" and self.value > 100:
            raise ValueError("a percent deadband is between 0 and 100")
        return self


class ReadOptions(ConfigModel):
    """How values are fetched. Set on the source (the defaults), on a browse root (its group) or
    on one node; unset keys fall back to the next level up."""

    mode: Literal["subscribe", "poll"] | None = None
    """`subscribe`: the server reports changes; `poll`: read every `poll_interval_s`."""
    sampling_interval_ms: Annotated[float, Field(ge=0)] | None = None
    queue_size: Annotated[int, Field(ge=1, le=100_000)] | None = None
    deadband: Deadband | None = None
    poll_interval_s: Annotated[float, Field(gt=0)] | None = None


_NSU = re.compile(r"^nsu=([^;]+);(.+)$")
# OPC UA Part 6 5.3.1.10 string form, checked here without importing asyncua (40 MB resident).
_NODE_ID = re.compile(
    r"^(ns=\d+;)?(i=\d+|s=.+|g=[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}"
    r"-[0-9A-Fa-f]{12}|b=[A-Za-z0-9+/=]*)$",
    re.DOTALL,
)


def split_namespace_uri(node_id: str) -> tuple[str, str] | None:
    """`nsu=<uri>;s=Name` as (uri, `s=Name`); None for an ordinary node id."""
    match = _NSU.match(node_id)
    return (match.group(1), match.group(2)) if match else None


class OpcUaNodeConfig(ReadOptions):
    """One explicitly listed variable and where its readings belong."""

    node_id: Annotated[str, Field(min_length=1)] | None = None
    """`ns=2;s=Press1.Temperature`, `ns=3;i=1042`, or `nsu=<namespace uri>;s=...` (the index is
    looked up in the server's namespace array on every connect, so it survives a server
    restart that numbers its namespaces differently)."""
    browse_path: Annotated[str, Field(min_length=1)] | None = None
    """Browse names under Objects separated by `/`, whatever their namespace
    (e.g. `Site/plant-a/pressing/line1/press-01/temperature`); resolved on every connect."""
    area: Name
    line: Name
    machine: Name
    signal: Name
    unit: str | None = None
    """Overrides the variable's EngineeringUnits property when set."""

    @field_validator("node_id")
    @classmethod
    def _check_node_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        with_uri = split_namespace_uri(value)
        if not _NODE_ID.match(with_uri[1] if with_uri else value):
            raise ValueError(
                "expected an OPC UA node id such as ns=2;s=Name, ns=3;i=1042 or nsu=urn:x;s=Name"
            )
        return value

    @model_validator(mode="after")
    def _one_address(self) -> OpcUaNodeConfig:
        if (self.node_id is None) == (self.browse_path is None):
            raise ValueError("give exactly one of `node_id` and `browse_path`")
        return self

    @property
    def address(self) -> str:
        return self.node_id or f"browse path {self.browse_path}"


BrowseLevel = Literal["area", "line", "machine", "skip"]
_PARTS: tuple[BrowseLevel, ...] = ("area", "line", "machine")


class BrowseRootConfig(ReadOptions):
    root: Annotated[str, Field(min_length=1)]
    """Browse names under Objects separated by `/` (e.g. `plant-a` or `Site/plant-a`). Below it
    the folder levels are `levels`; the Variables of the deepest level are signals."""
    levels: list[BrowseLevel] = Field(default_factory=lambda: list(_PARTS))
    """What each folder level below `root` names, top down: `area`, `line`, `machine`, or
    `skip` (walked through, its name unused), e.g. `[skip, machine]` for PLC/DataBlocks/<machine>
    or `[area, machine, skip]` for signals in a folder below each machine. `[]`: the Variables
    directly under `root` (with `machine` fixed below)."""
    area: Name | None = None
    line: Name | None = None
    machine: Name | None = None
    """Fixed names for the parts no level gives (e.g. `line: main` on a server without lines)."""

    @model_validator(mode="after")
    def _every_part_once(self) -> BrowseRootConfig:
        for part in _PARTS:
            from_levels = self.levels.count(part)
            fixed = getattr(self, part) is not None
            if from_levels > 1:
                raise ValueError(f"`levels` names {part} {from_levels} times")
            if from_levels == 1 and fixed:
                raise ValueError(f"{part} is both a level and fixed (`{part}:`): give one")
            if from_levels == 0 and not fixed:
                raise ValueError(f"no level is the {part}: add it to `levels` or fix `{part}:`")
        return self

    @property
    def path(self) -> list[str]:
        return [part for part in self.root.split("/") if part]


class OpcUaSecurityConfig(ConfigModel):
    """Secure channel. `None` sends everything in clear; Basic256Sha256 signs (`Sign`) or signs
    and encrypts (`SignAndEncrypt`) with the client certificate and key."""

    policy: Literal["None", "Basic256Sha256"] = "None"
    mode: Literal["Sign", "SignAndEncrypt"] = "SignAndEncrypt"
    certificate: str | None = None
    """Client certificate file (.der or .pem); its URI is used as the application URI."""
    private_key: str | None = None
    private_key_password: SecretStr | None = None
    server_certificate: str | None = None
    """Pin the server's certificate; unset takes it from the server's endpoint list."""

    @model_validator(mode="after")
    def _files_for_security(self) -> OpcUaSecurityConfig:
        if self.policy != "None" and (self.certificate is None or self.private_key is None):
            raise ValueError(f"policy {self.policy} needs `certificate` and `private_key`")
        return self


class OpcUaSourceConfig(ConfigModel):
    type: Literal["opcua"]
    name: Name
    endpoint: str
    security: OpcUaSecurityConfig = Field(default_factory=OpcUaSecurityConfig)
    username: str | None = None
    password: SecretStr | None = None
    publishing_interval_ms: Annotated[float, Field(gt=0)] = 100.0
    mode: Literal["subscribe", "poll"] = "subscribe"
    """Default for every node: `subscribe` (the server reports changes) or `poll`."""
    sampling_interval_ms: Annotated[float, Field(ge=0)] = 0.0
    """0 asks the server to sample as fast as the value changes."""
    queue_size: Annotated[int, Field(ge=1, le=100_000)] = 100
    """Values the server keeps per item between two publishes, so fast changes are not lost."""
    deadband: Deadband | None = None
    poll_interval_s: PositiveSeconds = 1.0
    request_timeout_s: PositiveSeconds = 4.0
    keepalive_timeout_s: Annotated[float, Field(ge=1)] = 10.0
    """A session that brings neither data nor a keep-alive for this long is dead: it is torn
    down and built again. The server is asked for keep-alives three times as often."""
    watchdog_interval_s: PositiveSeconds = 5.0
    """How often the session is probed (a read of the server state); an answer slower than
    this counts as a lost session, so a busy server or gateway needs some seconds here."""
    reconnect_max_s: PositiveSeconds = 30.0
    """Ceiling of the jittered backoff between reconnect attempts."""
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
        if self.password is not None and self.username is None:
            raise ValueError("`password` needs `username`")
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
    reconnect_max_s: PositiveSeconds = 30.0
    """Ceiling of the jittered backoff between reconnect attempts (per device)."""
    devices: Annotated[list[ModbusDeviceConfig], Field(min_length=1)]


SourceConfig = Annotated[OpcUaSourceConfig | ModbusSourceConfig, Field(discriminator="type")]


class BufferConfig(ConfigModel):
    """Batches not yet acknowledged by the broker. Past any limit the oldest are dropped (and
    counted in the health message)."""

    kind: Literal["disk", "memory"] = "disk"
    """disk: an SQLite file that survives restarts and power loss; memory: lost on restart."""
    path: str | None = None
    """The disk buffer's file (relative to the config file). Default: agent-buffer-<gateway_id>
    .sqlite in /var/lib/plantmesh when running as root, else in ~/.local/state/plantmesh."""
    max_batches: Annotated[int, Field(ge=1)] = 1_000_000
    max_mib: Annotated[float, Field(gt=0)] = 256.0
    """Encoded size of all kept batches, in MiB."""
    max_age_h: Annotated[float, Field(gt=0)] | None = 168.0
    """Batches older than this are dropped (null: no age limit)."""


class MqttSettings(MqttConnection):
    """The shared MQTT connection settings plus a client certificate for mutual TLS."""

    cert_file: str | None = None
    """Client certificate (PEM) for mqtts:// brokers that authenticate clients by certificate."""
    key_file: str | None = None
    """Its private key (PEM); required with cert_file."""
    reconnect_max_s: PositiveSeconds = 30.0
    """Longest wait between two connection attempts (the waits double up to it, jittered)."""

    @model_validator(mode="after")
    def _cert_and_key(self) -> MqttSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give cert_file and key_file together")
        if (self.cert_file or self.ca_file) and not self.tls:
            raise ValueError("ca_file, cert_file and key_file need an mqtts:// url")
        return self


class AgentConfig(ConfigModel):
    gateway_id: Name
    plant: Name
    namespace: Namespace = ""
    """Topic namespace (plantmesh.topics.Topics): lets deployments share one broker."""
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    publish_interval_s: PositiveSeconds = 0.5
    """Readings are batched per machine for this long, then published as one message each."""
    health_interval_s: PositiveSeconds = 10.0
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    """Processes that read the sources: 1 reads them in the agent's own process; N > 1 spreads
    them over N worker processes (round robin in config order: an OPC UA source whole, each
    Modbus device on its own), so a busy gateway uses more than one core. The buffer and the MQTT session stay in the agent's
    process. Changing it needs a restart."""
    queue_size: Annotated[int, Field(ge=1)] = 100_000
    """Readings waiting to be batched; when full, new readings are dropped (counted)."""
    max_readings_per_batch: Annotated[int, Field(ge=1)] = 1000
    shutdown_timeout_s: PositiveSeconds = 5.0
    """On SIGTERM: how long to wait for the broker to acknowledge what is still unsent."""
    buffer: BufferConfig = Field(default_factory=BufferConfig)
    metrics: MetricsEndpoint = Field(default_factory=MetricsEndpoint)
    watch_config_s: Annotated[float, Field(ge=0)] = 5.0
    """How often `agent run` checks the config file for changes and reloads it (0: only on
    SIGHUP)."""
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


def resolve_paths(config: AgentConfig, base_file: Path | str) -> AgentConfig:
    """Make the buffer, TLS, password and OPC UA certificate file paths absolute, relative to
    `base_file`."""
    if config.buffer.path is not None:
        config.buffer.path = str(resolve_relative(base_file, config.buffer.path))
    _resolve_files(config.mqtt, ("ca_file", "cert_file", "key_file"), base_file)
    if config.mqtt.password_file is not None:
        config.mqtt.password_file = resolve_relative(base_file, config.mqtt.password_file)
    for source in config.sources:
        if isinstance(source, OpcUaSourceConfig):
            keys = ("certificate", "private_key", "server_certificate")
            _resolve_files(source.security, keys, base_file)
    return config


def _resolve_files(section: object, keys: tuple[str, ...], base_file: Path | str) -> None:
    for key in keys:
        value = getattr(section, key)
        if value is not None:
            setattr(section, key, str(resolve_relative(base_file, value)))


def load_agent_config(path: Path | str) -> AgentConfig:
    """Read and validate an agent config file, profiles included. Raises ConfigError naming the
    file, the key and what was expected."""
    return resolve_paths(resolve_profiles(load_config(AgentConfig, path), path), path)
