"""Every signal a network serves and where a client finds it: what `plantmesh sim list` prints,
and what a test needs to configure a reader for the simulator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plantmesh.modbus_profile import DeviceProfile, RegisterSpec
from simulators.machines import machine_signals
from simulators.naming import expanded_node_id, node_path
from simulators.network import NetworkConfig, Protocol
from simulators.signals import SignalSpec


@dataclass(frozen=True)
class CatalogEntry:
    plant: str
    area: str
    line: str
    machine: str
    machine_class: str
    protocol: Protocol
    signal: SignalSpec
    opcua_node: str | None  # `plant/area/line/machine/signal`: the s= part of the node id
    unit_id: int | None
    register: RegisterSpec | None  # for Modbus; its `address` is as the profile counts
    wire_address: int | None  # for Modbus: the address on the wire (0-based)

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "plant": self.plant,
            "area": self.area,
            "line": self.line,
            "machine": self.machine,
            "class": self.machine_class,
            "protocol": self.protocol.value,
            "signal": self.signal.name,
            "unit": self.signal.unit,
            "kind": self.signal.kind.value,
            "range": [self.signal.low, self.signal.high],
        }
        if self.opcua_node is not None:
            entry["opcua_node_id"] = expanded_node_id(self.opcua_node)
        if self.register is not None:
            entry["unit_id"] = self.unit_id
            entry["wire_address"] = self.wire_address
            entry["register"] = self.register.model_dump(mode="json", exclude_none=True)
        return entry


def signal_catalog(network: NetworkConfig) -> list[CatalogEntry]:
    entries = []
    for plant, machine in network.machines():
        specs = machine_signals(machine.machine_class)
        profile = machine.profile if isinstance(machine.profile, DeviceProfile) else None
        registers = {r.signal: r for r in profile.registers} if profile else {}
        for name in machine.served_signal_names():
            register = registers.get(name)
            entries.append(
                CatalogEntry(
                    plant=plant.id,
                    area=machine.area,
                    line=machine.line,
                    machine=machine.id,
                    machine_class=machine.machine_class,
                    protocol=machine.protocol,
                    signal=specs[name],
                    opcua_node=(
                        node_path(plant.id, machine.area, machine.line, machine.id, name)
                        if machine.protocol == Protocol.OPCUA
                        else None
                    ),
                    unit_id=machine.unit_id,
                    register=register,
                    wire_address=(profile.wire_address(register) if profile and register else None),
                )
            )
    return entries
