"""Secure channels: Basic256Sha256 Sign and SignAndEncrypt with generated certificates, and
user/password authentication, against an asyncua server that offers nothing else."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from asyncua import Server, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support.opcua import (
    build_plc,
    opc_source,
    running_source,
    serving,
    values_of,
)
from tests.support.ports import free_port
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration


class OneUser(UserManager):
    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username == "operator" and password == "s3cret":
            return User(role=UserRole.User)
        return None


async def certificate(tmp_path: Path, name: str, usage: ExtendedKeyUsageOID) -> tuple[Path, Path]:
    cert, key = tmp_path / f"{name}.der", tmp_path / f"{name}.pem"
    await setup_self_signed_certificate(
        key,
        cert,
        f"urn:plantmesh:test:{name}",
        socket.gethostname(),
        [usage],
        {"organizationName": "plantmesh"},
    )
    return cert, key


async def secure_server(tmp_path: Path) -> tuple[Server, Any]:
    server_cert, server_key = await certificate(tmp_path, "server", ExtendedKeyUsageOID.SERVER_AUTH)
    server = Server(user_manager=OneUser())
    await server.init()
    server.set_server_name("secure plc")
    await server.set_application_uri("urn:plantmesh:test:server")
    server.set_security_policy(
        [
            ua.SecurityPolicyType.Basic256Sha256_Sign,
            ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
        ]
    )
    server.set_identity_tokens([ua.UserNameIdentityToken])
    await server.load_certificate(server_cert)
    await server.load_private_key(server_key)
    return await build_plc(free_port(), server=server)


@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
async def test_basic256sha256_with_user_and_password(tmp_path: Path, mode: str) -> None:
    server, plc = await secure_server(tmp_path)
    client_cert, client_key = await certificate(tmp_path, "agent", ExtendedKeyUsageOID.CLIENT_AUTH)
    security = {
        "policy": "Basic256Sha256",
        "mode": mode,
        "certificate": str(client_cert),
        "private_key": str(client_key),
    }
    config = opc_source(plc.endpoint, security=security, username="operator", password="s3cret")
    async with serving(server), running_source(config) as (source, readings):

        async def streaming() -> bool:
            return source.sessions == 1 and source.subscribed == 4

        await async_wait_for(streaming, 30, f"a {mode} session")
        await plc.vars["press-01/pressure"].write_value(111.0)

        async def seen() -> bool:
            return 111.0 in values_of(readings, "press-01/pressure")

        await async_wait_for(seen, 20, "a value over the secure channel")
    assert values_of(readings, "press-01/pressure") == [100.0, 111.0]


async def test_unsecured_client_or_wrong_password_never_gets_a_session(tmp_path: Path) -> None:
    server, plc = await secure_server(tmp_path)
    client_cert, client_key = await certificate(tmp_path, "agent", ExtendedKeyUsageOID.CLIENT_AUTH)
    secure = {
        "policy": "Basic256Sha256",
        "certificate": str(client_cert),
        "private_key": str(client_key),
    }
    wrong_password = opc_source(
        plc.endpoint, name="wrong", security=secure, username="operator", password="guess"
    )
    no_security = opc_source(plc.endpoint, name="plain", username="operator", password="s3cret")
    async with (
        serving(server),
        running_source(wrong_password) as (wrong, wrong_readings),
        running_source(no_security) as (plain, plain_readings),
    ):

        async def both_failed_twice() -> bool:
            return wrong.state.errors >= 2 and plain.state.errors >= 2

        await async_wait_for(both_failed_twice, 30, "repeated refusals")
        assert wrong.sessions == plain.sessions == 0
    assert wrong_readings == plain_readings == []
