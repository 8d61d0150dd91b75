"""Publishing to a broker that demands TLS, a client certificate and a password: a private
Mosquitto (its own config, certificates made here), since the dev stack's broker speaks plain
MQTT only."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge_agent.agent import Agent
from edge_agent.buffer import NewBatch
from edge_agent.config import AgentConfig
from plantmesh.stack.mosquitto import SYSTEM_BINARY
from tests.support.agent import offline_modbus
from tests.support.ports import free_port
from tests.support.waiting import async_wait_for, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="needs mosquitto"),
]


def _key_and_cert(
    tmp: Path, name: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, **ext: Any
) -> tuple[x509.Name, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(_loopback())]),
            critical=False,
        )
    cert = builder.sign(issuer_key, hashes.SHA256())
    (tmp / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return subject, key


def _loopback() -> Any:
    import ipaddress

    return ipaddress.ip_address("127.0.0.1")


@dataclass
class TlsBroker:
    port: int
    dir: Path

    def file(self, name: str) -> str:
        return str(self.dir / name)


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsBroker]:
    ca = _key_and_cert(tmp_path, "ca", None)
    _key_and_cert(tmp_path, "server", ca)
    _key_and_cert(tmp_path, "gateway", ca)
    passwords = tmp_path / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "gateway", "s3cret"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"""
listener {port} 127.0.0.1
cafile {tmp_path}/ca.pem
certfile {tmp_path}/server.pem
keyfile {tmp_path}/server.key
require_certificate true
allow_anonymous false
password_file {passwords}
user {pwd.getpwuid(os.geteuid()).pw_name}
log_dest file {tmp_path}/mosquitto.log
"""
    )
    binary = shutil.which("mosquitto") or SYSTEM_BINARY
    broker = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.PIPE)
    try:
        wait_for(
            lambda: "running" in _read(tmp_path / "mosquitto.log") or broker.poll() is not None,
            10,
            "mosquitto with TLS",
        )
        assert broker.poll() is None, _read(tmp_path / "mosquitto.log")
        yield TlsBroker(port, tmp_path)
    finally:
        broker.terminate()
        broker.wait(10)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def tls_config(broker: TlsBroker, password: str) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "gateway_id": "gw-tls",
            "plant": "plant-a",
            "mqtt": {
                "url": f"mqtts://127.0.0.1:{broker.port}",
                "username": "gateway",
                "password": password,
                "ca_file": broker.file("ca.pem"),
                "cert_file": broker.file("gateway.pem"),
                "key_file": broker.file("gateway.key"),
                "reconnect_max_s": 0.5,
            },
            "buffer": {"kind": "memory"},
            "shutdown_timeout_s": 2,
            "sources": [offline_modbus("nowhere")],
        }
    )


async def test_batches_go_out_over_mutual_tls_with_a_password(tls_broker: TlsBroker) -> None:
    agent = Agent(tls_config(tls_broker, "s3cret"))
    agent.buffer.put([NewBatch("old-session", 0, "plantmesh/v1/x/readings", b"{}", 1)])
    task = asyncio.create_task(agent.run(), name="tls-agent")
    try:

        async def acked() -> bool:
            return agent.publisher.stats.batches_acked == 1

        await async_wait_for(acked, 20, "the batch acknowledged over TLS")
        assert agent.publisher.connected
    finally:
        agent.stop()
        await asyncio.wait_for(task, 30)


async def test_a_wrong_password_is_refused_and_retried(
    tls_broker: TlsBroker, caplog: pytest.LogCaptureFixture
) -> None:
    agent = Agent(tls_config(tls_broker, "wrong"))
    task = asyncio.create_task(agent.run(), name="tls-agent")
    try:

        async def refused() -> bool:
            return "refused the connection" in caplog.text

        await async_wait_for(refused, 20, "the broker's refusal logged")
        assert not agent.publisher.connected
        assert caplog.text.count("refused the connection") == 1  # logged once, not per retry
    finally:
        agent.stop()
        await asyncio.wait_for(task, 30)
