"""The network file: which plants exist, which machines each serves over which protocol, and the
scripted events. Loaded with plantmesh.config, so a mistake names the file and the key.

Cross-references are checked here (duplicate ids, events naming unknown plants, machines or
signals, Modbus machines without profile or unit id, a plant whose machines need a server it does
not configure). A Modbus machine's `profile` is a path relative to the network file; `load_network`
replaces it by the loaded DeviceProfile, so a NetworkConfig built in code may also give the
profile inline.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from plantmesh.config import (
    ConfigError,
    ConfigModel,
    load_config,
    resolve_relative,
    validate_config,
)
from plantmesh.contracts.common import Name
from plantmesh.modbus_profile import DeviceProfile, load_profile
from simulators.event_config import SIGNAL_EVENTS, EventConfig, ServerEvent, StateFlapping
from simulators.machines import MACHINE_CLASSES, machine_signals

Port = Annotated[int, Field(ge=0, le=65535, description="0 = any free port")]


class Protocol(StrEnum):
    OPCUA = "opcua"
    MODBUS = "modbus"


class SecurityMode(StrEnum):
    """OPC UA endpoints a plant offers: no security, or Basic256Sha256 signed or signed and
    encrypted (with a self-signed server certificate generated on first start)."""

    NONE = "none"
    SIGN = "sign"
    SIGN_AND_ENCRYPT = "sign_and_encrypt"


class OpcUaServerConfig(ConfigModel):
    host: str = "127.0.0.1"
    port: Port
    security: Annotated[list[SecurityMode], Field(min_length=1)] = [SecurityMode.NONE]
    anonymous: bool = True  # anonymous logins accepted
    users: dict[Name, SecretStr] = {}  # user name -> password, for user/password logins
    # Where the server's key and certificate live (relative to the network file); generated
    # when missing. Omitted: a temporary directory for the run.
    certificate_dir: str | None = None

    @model_validator(mode="after")
    def _someone_can_log_in(self) -> OpcUaServerConfig:
        if not self.anonymous and not self.users:
            raise ValueError("anonymous is false and no users are given: nobody could log in")
        return self

    @property
    def secure(self) -> bool:
        return any(mode != SecurityMode.NONE for mode in self.security)


class ModbusServerConfig(ConfigModel):
    host: str = "127.0.0.1"
    port: Port


Problem = tuple[tuple[str | int, ...], str, Any]


def raise_problems(title: str, problems: list[Problem]) -> None:
    """Report problems at the key they concern (a plain ValueError would point at the parent)."""
    if problems:
        raise ValidationError.from_exception_data(
            title,
            [
                InitErrorDetails(
                    type=PydanticCustomError("network", "{problem}", {"problem": message}),
                    loc=loc,
                    input=value,
                )
                for loc, message, value in problems
            ],
        )


class MachineConfig(ConfigModel):
    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)

    id: Name
    area: Name
    line: Name
    machine_class: str = Field(alias="class")
    protocol: Protocol
    unit_id: Annotated[int, Field(ge=1, le=255)] | None = None
    # A path relative to the network file, or (in code and after loading) the profile itself.
    profile: str | DeviceProfile | None = None

    @field_validator("machine_class")
    @classmethod
    def _known_class(cls, value: str) -> str:
        if value not in MACHINE_CLASSES:
            raise ValueError(f"unknown machine class (known: {', '.join(sorted(MACHINE_CLASSES))})")
        return value

    @model_validator(mode="after")
    def _check_protocol_keys(self) -> MachineConfig:
        problems: list[Problem] = []
        if self.protocol == Protocol.MODBUS:
            if self.unit_id is None:
                problems.append((("unit_id",), "a modbus machine needs a unit_id (1-255)", None))
            if self.profile is None:
                problems.append((("profile",), "a modbus machine needs a device profile", None))
            elif isinstance(self.profile, DeviceProfile):
                signals = machine_signals(self.machine_class)
                for i, spec in enumerate(self.profile.registers):
                    if spec.signal not in signals:
                        problems.append(
                            (
                                ("profile", "registers", i, "signal"),
                                f"{self.machine_class} has no such signal "
                                f"(it has: {', '.join(signals)})",
                                spec.signal,
                            )
                        )
        else:
            for key in ("unit_id", "profile"):
                if getattr(self, key) is not None:
                    problems.append(((key,), "applies to modbus machines only", None))
        raise_problems("MachineConfig", problems)
        return self

    def served_signal_names(self) -> list[str]:
        """The signals a client can read: every signal over OPC UA, the profile's over Modbus."""
        if isinstance(self.profile, DeviceProfile):
            return [spec.signal for spec in self.profile.registers]
        return list(machine_signals(self.machine_class))


class PlantConfig(ConfigModel):
    id: Name
    opcua: OpcUaServerConfig | None = None  # omitted: no OPC UA server
    modbus: ModbusServerConfig | None = None  # omitted: no Modbus server
    machines: Annotated[list[MachineConfig], Field(min_length=1)]

    @model_validator(mode="after")
    def _check_machines(self) -> PlantConfig:
        problems: list[Problem] = []
        ids: set[str] = set()
        units: dict[int, str] = {}
        for i, machine in enumerate(self.machines):
            if machine.id in ids:
                problems.append(
                    (("machines", i, "id"), "duplicate machine id in this plant", machine.id)
                )
            ids.add(machine.id)
            if machine.unit_id is not None:
                other = units.setdefault(machine.unit_id, machine.id)
                if other != machine.id:
                    problems.append(
                        (
                            ("machines", i, "unit_id"),
                            f"unit id already used by {other}",
                            machine.unit_id,
                        )
                    )
        for protocol, server in ((Protocol.OPCUA, self.opcua), (Protocol.MODBUS, self.modbus)):
            users = [m.id for m in self.machines if m.protocol == protocol]
            if users and server is None:
                problems.append(
                    (
                        (protocol.value,),
                        f"required: machines {', '.join(users)} use {protocol.value} "
                        f"(add `{protocol.value}: {{port: N}}`)",
                        None,
                    )
                )
        raise_problems("PlantConfig", problems)
        return self

    def machine(self, machine_id: str) -> MachineConfig | None:
        return next((m for m in self.machines if m.id == machine_id), None)


class NetworkConfig(ConfigModel):
    seed: int = 0
    tick_s: Annotated[float, Field(gt=0, description="seconds between machine updates")] = 1.0
    plants: Annotated[list[PlantConfig], Field(min_length=1)]
    events: list[EventConfig] = []

    @model_validator(mode="after")
    def _check_references(self) -> NetworkConfig:
        problems: list[Problem] = []
        seen: set[str] = set()
        bound: dict[tuple[str, int], str] = {}
        for i, plant in enumerate(self.plants):
            if plant.id in seen:
                problems.append((("plants", i, "id"), "duplicate plant id", plant.id))
            seen.add(plant.id)
            for key, server in (("opcua", plant.opcua), ("modbus", plant.modbus)):
                if server is None or server.port == 0:
                    continue
                other = bound.setdefault((server.host, server.port), f"{plant.id}.{key}")
                if other != f"{plant.id}.{key}":
                    problems.append(
                        (("plants", i, key, "port"), f"port already used by {other}", server.port)
                    )
        problems.extend(event_problems(self, self.events, ()))
        raise_problems("NetworkConfig", problems)
        return self

    def plant(self, plant_id: str) -> PlantConfig:
        for plant in self.plants:
            if plant.id == plant_id:
                return plant
        raise KeyError(plant_id)

    def machines(self) -> Iterator[tuple[PlantConfig, MachineConfig]]:
        for plant in self.plants:
            for machine in plant.machines:
                yield plant, machine

    def with_free_ports(self) -> NetworkConfig:
        """A copy whose servers all bind port 0 (any free port): what tests run."""
        plants = []
        for plant in self.plants:
            update: dict[str, Any] = {}
            if plant.opcua is not None:
                update["opcua"] = plant.opcua.model_copy(update={"port": 0})
            if plant.modbus is not None:
                update["modbus"] = plant.modbus.model_copy(update={"port": 0})
            plants.append(plant.model_copy(update=update))
        return self.model_copy(update={"plants": plants})


def event_problems(
    network: NetworkConfig, events: Sequence[EventConfig], prefix: tuple[str | int, ...]
) -> list[Problem]:
    """Events naming a plant, machine, signal or server the network does not have."""
    problems: list[Problem] = []
    plants = {p.id: p for p in network.plants}
    for i, event in enumerate(events):
        at = (*prefix, "events", i)
        plant = plants.get(event.plant)
        if plant is None:
            message = f"no such plant (plants: {', '.join(plants)})"
            problems.append(((*at, "plant"), message, event.plant))
            continue
        if isinstance(event, ServerEvent):
            protocols = [Protocol(event.protocol)] if event.protocol else list(Protocol)
            if not any(m.protocol in protocols for m in plant.machines):
                where = event.protocol or "any"
                message = f"{plant.id} serves no machine over {where} protocol"
                problems.append(((*at, "protocol"), message, event.protocol))
            continue
        assert isinstance(event, (*SIGNAL_EVENTS, StateFlapping))
        machine = plant.machine(event.machine)
        if machine is None:
            message = f"no such machine in {plant.id}"
            problems.append(((*at, "machine"), message, event.machine))
            continue
        served = machine.served_signal_names()
        if isinstance(event, SIGNAL_EVENTS) and event.signal not in served:
            message = f"{machine.id} serves no such signal (it serves: {', '.join(served)})"
            problems.append(((*at, "signal"), message, event.signal))
    return problems


def load_network(path: Path | str) -> NetworkConfig:
    """Read a network file and the device profiles it names (paths relative to the file)."""
    network = load_config(NetworkConfig, path)
    data = network.model_dump(by_alias=True)
    problems: list[str] = []
    for i, plant in enumerate(network.plants):
        if plant.opcua is not None and plant.opcua.certificate_dir is not None:
            where = resolve_relative(path, plant.opcua.certificate_dir)
            data["plants"][i]["opcua"]["certificate_dir"] = str(where)
        for j, machine in enumerate(plant.machines):
            if not isinstance(machine.profile, str):
                continue
            key = f"plants[{i}].machines[{j}].profile"
            try:
                profile = load_profile(resolve_relative(path, machine.profile))
            except ConfigError as exc:
                problems.append(f"{key}: {exc}")
                continue
            data["plants"][i]["machines"][j]["profile"] = profile.model_dump()
    if problems:
        raise ConfigError(path, problems)
    return validate_config(NetworkConfig, data, path)


def unresolved_profiles(network: NetworkConfig) -> list[str]:
    """Machines whose profile is still a path (a NetworkConfig not made by load_network)."""
    return [
        f"{plant.id}/{machine.id}"
        for plant, machine in network.machines()
        if isinstance(machine.profile, str)
    ]
