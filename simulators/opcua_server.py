"""One plant's OPC UA server: Objects/<plant>/<area>/<line>/<machine>/<signal>.

Every signal is a Double variable with string node id `ns=<idx>;s=<plant>/<area>/<line>/<machine>/
<signal>` in namespace NAMESPACE_URI, with the EngineeringUnits (EUInformation) and EURange
properties of an analog item. A variable is written only when its served value or its status
changes (OPC UA notifies subscribers on change), with the tick's simulated instant (shifted by a
scripted clock skew) as SourceTimestamp. A failed sensor reads BadSensorFailure or
UncertainSensorNotAccurate.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from asyncua import ua
from asyncua.common.node import Node
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_server import InternalServer
from asyncua.server.server import Server
from asyncua.server.user_managers import UserManager
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from cryptography.x509.oid import ExtendedKeyUsageOID

from simulators.engine import SignalUpdate, SimMachine
from simulators.errors import OpcUaServerError
from simulators.naming import NAMESPACE_URI, node_path, opcua_url
from simulators.network import OpcUaServerConfig, SecurityMode
from simulators.opcua_address_space import FastInternalServer
from simulators.signals import Quality, SignalSpec

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
    "Nm": "NU",
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


STATUS = {
    Quality.GOOD: ua.StatusCode(ua.UInt32(StatusCodes.Good)),
    Quality.UNCERTAIN: ua.StatusCode(ua.UInt32(StatusCodes.UncertainSensorNotAccurate)),
    Quality.BAD: ua.StatusCode(ua.UInt32(StatusCodes.BadSensorFailure)),
}


def eu_information(unit: str) -> ua.EUInformation:
    return ua.EUInformation(
        NamespaceUri=UNECE_NAMESPACE,
        UnitId=ua.Int32(unece_unit_id(unit)),
        DisplayName=ua.LocalizedText(unit),
        Description=ua.LocalizedText(unit),
    )


POLICIES = {
    SecurityMode.NONE: ua.SecurityPolicyType.NoSecurity,
    SecurityMode.SIGN: ua.SecurityPolicyType.Basic256Sha256_Sign,
    SecurityMode.SIGN_AND_ENCRYPT: ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
}


class PasswordUsers(UserManager):
    """asyncua's user manager for a plant: anonymous sessions if allowed, else a user name
    with its password; a wrong password is refused (BadUserAccessDenied)."""

    def __init__(self, config: OpcUaServerConfig) -> None:
        self._anonymous = config.anonymous
        self._passwords = {name: secret.get_secret_value() for name, secret in config.users.items()}

    def get_user(
        self,
        iserver: InternalServer,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username is None:
            return User(role=UserRole.User) if self._anonymous else None
        if username in self._passwords and password == self._passwords[username]:
            return User(role=UserRole.User, name=username)
        return None


def application_uri(plant: str) -> str:
    return f"{NAMESPACE_URI}:{plant}"


async def server_certificate(plant: str, host: str, directory: Path) -> tuple[Path, Path]:
    """The plant's key and self-signed certificate in `directory`, generated when missing
    (or no longer valid for this plant and host)."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    key, cert = directory / f"{plant}-key.pem", directory / f"{plant}-cert.der"
    await setup_self_signed_certificate(
        key,
        cert,
        application_uri(plant),
        socket.gethostname() if host in ("0.0.0.0", "::") else host,
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        {"commonName": f"plantmesh simulator {plant}", "organizationName": "plantmesh"},
    )
    return key, cert


class PlantOpcUaServer:
    def __init__(
        self,
        plant: str,
        host: str,
        port: int,
        machines: list[SimMachine],
        config: OpcUaServerConfig | None = None,
        certificate_dir: Path | None = None,
    ) -> None:
        self.plant = plant
        self.host = host
        self.port = port  # the configured port until start(), then the bound one
        self.machines = machines
        self.config = config or OpcUaServerConfig(host=host, port=port)
        self.certificate_dir = certificate_dir  # used when the config names none
        self.certificate: Path | None = None  # the server certificate (DER) once set up
        self.namespace_index = -1
        self._server: Server | None = None
        self._nodes: dict[tuple[str, str], ua.NodeId] = {}
        self._folders: dict[str, Node] = {}

    @property
    def url(self) -> str:
        return opcua_url(self.host, self.port)

    async def setup(self) -> None:
        """Build the address space (not yet listening)."""
        server = Server(iserver=FastInternalServer(user_manager=PasswordUsers(self.config)))
        # asyncua's clock task makes stop() wait up to a second; CurrentTime is set every tick.
        server.disable_clock()
        await server.init()
        await server.set_application_uri(application_uri(self.plant))
        server.set_server_name(f"plantmesh simulator {self.plant}")
        server.set_endpoint(self.url)
        server.set_security_policy([POLICIES[mode] for mode in self.config.security])
        tokens: list[type] = [ua.AnonymousIdentityToken] if self.config.anonymous else []
        if self.config.users:
            tokens.append(ua.UserNameIdentityToken)
        server.set_identity_tokens(tokens)
        if self.config.secure:
            where = self.config.certificate_dir or self.certificate_dir
            if where is None:
                raise OpcUaServerError(f"{self.plant}: no directory for the server certificate")
            key, self.certificate = await server_certificate(self.plant, self.host, Path(where))
            await server.load_certificate(str(self.certificate))
            await server.load_private_key(str(key))
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
        for update in updates:
            nodeid = self._nodes.get((update.machine.path, update.signal.name))
            if nodeid is None:
                continue
            await self._server.write_attribute_value(
                nodeid,
                ua.DataValue(
                    Value=ua.Variant(float(update.value), ua.VariantType.Double),
                    StatusCode=STATUS[update.quality],
                    SourceTimestamp=ua_datetime(update.source_ts or source_ts),
                    ServerTimestamp=now,
                ),
            )
        # The PLC's own clock: the simulated instant, skewed like its source timestamps.
        clock = ua_datetime(source_ts)
        await self._server.write_attribute_value(
            numeric_node_id(ObjectIds.Server_ServerStatus_CurrentTime),
            ua.DataValue(Value=ua.Variant(clock, ua.VariantType.DateTime), ServerTimestamp=now),
        )

    def restarted(self) -> PlantOpcUaServer:
        """A new server for the same plant on the port this one had (after a scripted outage)."""
        return PlantOpcUaServer(
            self.plant, self.host, self.port, self.machines, self.config, self.certificate_dir
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
