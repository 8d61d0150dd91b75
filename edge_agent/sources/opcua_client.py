"""Building an asyncua client from a source's config: security policy, certificates, user."""

from __future__ import annotations

from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto import security_policies, uacrypto
from cryptography import x509

from edge_agent.config import OpcUaSourceConfig
from edge_agent.errors import SourceError


def certificate_uri(certificate: x509.Certificate) -> str | None:
    """The application URI a certificate was issued for (its subjectAltName URI)."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    uris = names.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


async def build_client(config: OpcUaSourceConfig) -> Client:
    """A client ready to `connect()`. With a security policy this already talks to the server
    (to fetch its certificate unless one is pinned), so it can raise what connect() raises."""
    client = Client(
        config.endpoint,
        timeout=config.request_timeout_s,
        watchdog_intervall=config.watchdog_interval_s,
    )
    client.name = client.description = f"plantmesh edge agent ({config.name})"
    if config.username is not None:
        client.set_user(config.username)
        if config.password is not None:
            client.set_password(config.password.get_secret_value())
    security = config.security
    if security.policy == "None":
        return client
    assert security.certificate is not None
    assert security.private_key is not None
    # The server checks that the certificate names the application URI the client announces.
    uri = certificate_uri(await uacrypto.load_certificate(security.certificate))
    if uri is None:
        raise SourceError(f"certificate {security.certificate} has no application URI")
    client.application_uri = uri
    password = security.private_key_password
    await client.set_security(
        security_policies.SecurityPolicyBasic256Sha256,
        certificate=security.certificate,
        private_key=security.private_key,
        private_key_password=password.get_secret_value() if password else None,
        server_certificate=security.server_certificate,
        mode=getattr(ua.MessageSecurityMode, security.mode),
    )
    return client
