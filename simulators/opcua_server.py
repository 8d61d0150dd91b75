"""One plant's OPC UA server: Objects/<plant>/<area>/<line>/<machine>/<signal>.

Every signal is a Double variable with string node id `ns=<idx>;s=<plant>/<area>/<line>/<machine>/
<signal>` in namespace NAMESPACE_URI, with the EngineeringUnits (EUInformation) and EURange
properties of an analog item. A variable is written only when its served value changes (OPC UA
notifies subscribers on change), with the tick's simulated instant as SourceTimestamp.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import cast

from asyncua import ua
from asyncua.common.node import Node
from asyncua.server.server import Server
from asyncua.ua.object_ids import ObjectIds

from simulators.engine import SignalUpdate, SimMachine
from simulators.errors import OpcUaServerError
from simulators.naming import NAMESPACE_URI, node_path, opcua_url
from simulators.opcua_address_space import FastInternalServer
from simulators.signals import SignalSpec

log = logging.getLogger(__name__)

UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"
# Unit strings the models use -> UN/CEFACT Recommendation 20 common codes (OPC UA Part 8 5.6.3).
UNECE_CODES = {
    "degC": "CEL",
    "mm/s": "C16",
    "A": "AMP",
    "rpm": "RPM",
    "bar": "BAR",
    "m/min": "2X",
    "m3/h": "MQH",
    "kWh": "KWH",
    "%": "P1",
    "1": "C62",
    "parts": "H87",
}


def unece_unit_id(unit: str) -> int:
    """The EUInformation UnitId of a unit: its common code's bytes as an integer, -1 if none."""
    code = UNECE_CODES.get(unit)
    if code is None:
        return -1
    return int.from_bytes(code.encode("ascii"), "big")


# asyncua annotates with its own int/str/datetime subclasses; these keep mypy strict honest.
def string_node_id(identifier: str, namespace_index: int) -> ua.NodeId:
    return ua.NodeId(ua.String(identifier), ua.Int16(namespace_index))


def numeric_node_id(identifier: int) -> ua.NodeId:
    return ua.NodeId(ua.Int32(identifier))


def ua_datetime(ts: datetime) -> ua.DateTime:
    return cast(ua.DateTime, ts)


def eu_information(unit: str) -> ua.EUInformation:
    return ua.EUInformation(
        NamespaceUri=UNECE_NAMESPACE,
        UnitId=ua.Int32(unece_unit_id(unit)),
        DisplayName=ua.LocalizedText(unit),
        Description=ua.LocalizedText(unit),
    )


class PlantOpcUaServer:
    def __init__(self, plant: str, host: str, port: int, machines: list[SimMachine]) -> None:
        self.plant = plant
        self.host = host
        self.port = port  # the configured port until start(), then the bound one
        self.machines = machines
        self.namespace_index = -1
        self._server: Server | None = None
        self._nodes: dict[tuple[str, str], ua.NodeId] = {}
        self._folders: dict[str, Node] = {}

    @property
    def url(self) -> str:
        return opcua_url(self.host, self.port)

    async def setup(self) -> None:
        """Build the address space (not yet listening)."""
        server = Server(iserver=FastInternalServer())
        # asyncua's clock task makes stop() wait up to a second; CurrentTime is set every tick.
        server.disable_clock()
        await server.init()
        await server.set_application_uri(f"{NAMESPACE_URI}:{self.plant}")
        server.set_server_name(f"plantmesh simulator {self.plant}")
        server.set_endpoint(self.url)
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.set_identity_tokens([ua.AnonymousIdentityToken])
        self.namespace_index = await server.register_namespace(NAMESPACE_URI)
        self._server = server
        for machine in self.machines:
            folder = await self._folder(
                self.plant, machine.config.area, machine.config.line, machine.id
            )
            for spec in machine.signals:
                await self._add_variable(folder, machine, spec)

    async def _folder(self, *parts: str) -> Node:
        assert self._server is not None
        path = node_path(*parts)
        if path in self._folders:
            return self._folders[path]
        parent = await self._folder(*parts[:-1]) if len(parts) > 1 else self._server.nodes.objects
        folder = await parent.add_folder(
            string_node_id(path, self.namespace_index),
            ua.QualifiedName(parts[-1], self.namespace_index),
        )
        self._folders[path] = folder
        return folder

    async def _add_variable(self, folder: Node, machine: SimMachine, spec: SignalSpec) -> None:
        ns = self.namespace_index
        path = node_path(machine.path, spec.name)
        variable = await folder.add_variable(
            string_node_id(path, ns), ua.QualifiedName(spec.name, ns), 0.0, ua.VariantType.Double
        )
        await variable.add_property(
            string_node_id(f"{path}#EngineeringUnits", ns),
            ua.QualifiedName("EngineeringUnits", 0),
            eu_information(spec.unit),
            datatype=numeric_node_id(ObjectIds.EUInformation),
        )
        await variable.add_property(
            string_node_id(f"{path}#EURange", ns),
            ua.QualifiedName("EURange", 0),
            ua.Range(Low=float(spec.low), High=float(spec.high)),
            datatype=numeric_node_id(ObjectIds.Range),
        )
        self._nodes[(machine.path, spec.name)] = variable.nodeid

    async def write(self, updates: Iterable[SignalUpdate], source_ts: datetime) -> None:
        """Write the changed values of one tick (updates of other protocols are skipped)."""
        assert self._server is not None
        now = ua_datetime(datetime.now(UTC))
        good = ua.StatusCode()  # Good
        for update in updates:
            nodeid = self._nodes.get((update.machine.path, update.signal.name))
            if nodeid is None:
                continue
            await self._server.write_attribute_value(
                nodeid,
                ua.DataValue(
                    Value=ua.Variant(float(update.value), ua.VariantType.Double),
                    StatusCode=good,
                    SourceTimestamp=ua_datetime(source_ts),
                    ServerTimestamp=now,
                ),
            )
        await self._server.write_attribute_value(
            numeric_node_id(ObjectIds.Server_ServerStatus_CurrentTime),
            ua.DataValue(Value=ua.Variant(now, ua.VariantType.DateTime), ServerTimestamp=now),
        )

    async def start(self) -> None:
        assert self._server is not None
        try:
            await self._server.start()
        except OSError as exc:
            raise OpcUaServerError(
                f"{self.plant}: OPC UA server cannot listen on {self.host}:{self.port}: "
                f"{exc.strerror or exc}"
            ) from exc
        if self._server.bserver is not None:
            self.port = self._server.bserver.port

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            # asyncua's stop() leaves subscriptions of still-open client sessions ticking;
            # deleting them first stops their tasks, so a stopped server leaves nothing behind.
            subscriptions = server.iserver.subscription_service
            await subscriptions.delete_subscriptions(list(subscriptions.subscriptions))
            await server.stop()
