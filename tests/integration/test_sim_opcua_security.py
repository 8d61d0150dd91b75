"""OPC UA security of the simulated PLCs, seen by an asyncua client: Basic256Sha256 Sign and
SignAndEncrypt with generated certificates, user/password and anonymous logins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asyncua import Client, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from simulators import NAMESPACE_URI, NetworkConfig, Simulation

pytestmark = pytest.mark.integration

START = datetime(2026, 5, 4, 8, 0, 0, tzinfo=UTC)
CLIENT_URI = "urn:plantmesh:test-client"
PASSWORD = "s3cret-pw"


def machine(machine_id: str) -> dict[str, str]:
    return {"id": machine_id, "area": "stamping", "line": "line1", "class": "hydraulic_press",
            "protocol": "opcua"}  # fmt: skip


def network(certificate_dir: Path) -> NetworkConfig:
    return NetworkConfig.model_validate(
        {
            "plants": [
                {   # every mode, users only
                    "id": "plant-s",
                    "opcua": {"port": 0, "security": ["none", "sign", "sign_and_encrypt"],
                              "anonymous": False, "users": {"operator": PASSWORD},
                              "certificate_dir": str(certificate_dir)},
                    "machines": [machine("press-01")],
                },
                {   # encrypted only, anonymous
                    "id": "plant-e",
                    "opcua": {"port": 0, "security": ["sign_and_encrypt"]},
                    "machines": [machine("press-02")],
                },
            ]
        }
    )  # fmt: skip


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulation]:
    simulation = Simulation(network(tmp_path / "server-certs"), start=START)
    async with simulation.serving():
        yield simulation


@pytest.fixture
async def client_certificate(tmp_path: Path) -> tuple[Path, Path]:
    key, cert = tmp_path / "client-key.pem", tmp_path / "client-cert.der"
    await setup_self_signed_certificate(
        key, cert, CLIENT_URI, "localhost", [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"commonName": "plantmesh test client"},
    )  # fmt: skip
    return cert, key


def url(sim: Simulation, plant: str) -> str:
    endpoint = sim.endpoints()[plant].opcua_url
    assert endpoint is not None
    return endpoint


async def secure_client(
    endpoint: str, mode: str, certificate: tuple[Path, Path], user: str | None = None
) -> Client:
    client = Client(endpoint, timeout=5)
    client.application_uri = CLIENT_URI
    cert, key = certificate
    await client.set_security_string(f"Basic256Sha256,{mode},{cert},{key}")
    if user is not None:
        client.set_user(user)
        client.set_password(PASSWORD if user == "operator" else "wrong")
    return client


async def bearing(client: Client, plant: str, machine_id: str) -> float:
    idx = await client.get_namespace_index(NAMESPACE_URI)
    node = client.get_node(ua.NodeId(f"{plant}/stamping/line1/{machine_id}/bearing_temp", idx))
    return float(await node.read_value())


def served(sim: Simulation, plant: str) -> float:
    return float(
        next(
            r.value
            for r in reversed(sim.records)
            if r.plant == plant and r.signal == "bearing_temp"
        )
    )


async def test_endpoints_offer_each_configured_mode_with_the_generated_certificate(
    sim: Simulation,
) -> None:
    certificate = sim.endpoints()["plant-s"].opcua_certificate
    assert certificate is not None
    assert certificate.exists()
    parsed = x509.load_der_x509_certificate(certificate.read_bytes())
    uris = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "urn:plantmesh:sim:plant-s" in uris.get_values_for_type(x509.UniformResourceIdentifier)
    endpoints = await Client(url(sim, "plant-s"), timeout=5).connect_and_get_server_endpoints()
    modes = {(e.SecurityPolicyUri.split("#")[-1], e.SecurityMode) for e in endpoints}
    assert modes == {
        ("None", ua.MessageSecurityMode.None_),
        ("Basic256Sha256", ua.MessageSecurityMode.Sign),
        ("Basic256Sha256", ua.MessageSecurityMode.SignAndEncrypt),
    }
    assert all(e.ServerCertificate == certificate.read_bytes() for e in endpoints)


@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
async def test_signed_and_encrypted_sessions_with_user_and_password(
    sim: Simulation, client_certificate: tuple[Path, Path], mode: str
) -> None:
    client = await secure_client(url(sim, "plant-s"), mode, client_certificate, "operator")
    async with client:
        await sim.step()
        assert await bearing(client, "plant-s", "press-01") == served(sim, "plant-s")


async def test_user_and_password_over_an_unsecured_channel(sim: Simulation) -> None:
    client = Client(url(sim, "plant-s"), timeout=5)
    client.set_user("operator")
    client.set_password(PASSWORD)
    async with client:
        assert await bearing(client, "plant-s", "press-01") == served(sim, "plant-s")


async def test_wrong_password_is_refused(
    sim: Simulation, client_certificate: tuple[Path, Path]
) -> None:
    client = await secure_client(url(sim, "plant-s"), "SignAndEncrypt", client_certificate, "bad")
    client.set_user("operator")
    with pytest.raises(ua.UaStatusCodeError) as refused:
        async with client:
            pytest.fail("a wrong password opened a session")
    assert refused.value.code == ua.StatusCodes.BadUserAccessDenied


async def test_anonymous_is_refused_where_only_users_may_log_in(sim: Simulation) -> None:
    with pytest.raises(ua.UaStatusCodeError) as refused:
        async with Client(url(sim, "plant-s"), timeout=5):
            pytest.fail("an anonymous session was opened")
    assert refused.value.code in (
        ua.StatusCodes.BadIdentityTokenRejected,
        ua.StatusCodes.BadIdentityTokenInvalid,
        ua.StatusCodes.BadUserAccessDenied,
    )


async def test_encrypted_only_plant_takes_anonymous_over_encryption_only(
    sim: Simulation, client_certificate: tuple[Path, Path]
) -> None:
    client = await secure_client(url(sim, "plant-e"), "SignAndEncrypt", client_certificate)
    async with client:
        assert await bearing(client, "plant-e", "press-02") == served(sim, "plant-e")
    with pytest.raises(ua.UaError):
        async with Client(url(sim, "plant-e"), timeout=5):
            pytest.fail("an unsecured session on an encrypted-only server")
