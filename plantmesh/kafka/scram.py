"""SCRAM users through Kafka's AlterUserScramCredentials request (KIP-554), which aiokafka does
not have. The client salts and hashes the password itself and sends only the salt and the
salted password, so no tool and no command line ever holds the clear password (Kafka's
ConfigCommand takes it as an argument)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from typing import Any, Literal

from aiokafka.errors import for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from plantmesh.kafka.acls import Send

Mechanism = Literal["SCRAM-SHA-256", "SCRAM-SHA-512"]
_MECHANISMS: dict[str, tuple[int, str]] = {
    "SCRAM-SHA-256": (1, "sha256"),
    "SCRAM-SHA-512": (2, "sha512"),
}
ITERATIONS = 8192
"""Kafka accepts 4096..16384; Kafka's own tools default to 4096."""
SALT_BYTES = 32


class ScramError(Exception):
    """The broker refused to store a user's SCRAM credential."""


class _AlterUserScramCredentialsResponseV0(Response):  # type: ignore[misc]
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _AlterUserScramCredentialsRequestV0(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = _AlterUserScramCredentialsResponseV0
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(
                ("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields)
            ),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _AlterUserScramCredentials(Request[_AlterUserScramCredentialsRequestV0]):  # type: ignore[misc]
    API_KEY = 51

    def __init__(self, upsertions: list[tuple[Any, ...]]) -> None:
        self._upsertions = upsertions

    def build(self, request_struct_class: type[_AlterUserScramCredentialsRequestV0]) -> Any:
        return request_struct_class([], self._upsertions, {})

    def __repr__(self) -> str:  # never the salted password, should anyone log a request
        return f"AlterUserScramCredentials(users={[u[0] for u in self._upsertions]})"


def salted_password(
    password: str, salt: bytes, iterations: int, mechanism: Mechanism = "SCRAM-SHA-512"
) -> bytes:
    """RFC 5802's SaltedPassword := Hi(password, salt, i), i.e. PBKDF2 with the mechanism's
    hash: what Kafka's ScramFormatter computes from a clear password."""
    _, digest = _MECHANISMS[mechanism]
    return hashlib.pbkdf2_hmac(digest, password.encode(), salt, iterations)


def _upsertion(user: str, password: str, mechanism: Mechanism, iterations: int) -> tuple[Any, ...]:
    code, _ = _MECHANISMS[mechanism]
    salt = secrets.token_bytes(SALT_BYTES)
    salted = salted_password(password, salt, iterations, mechanism)
    return (user, code, iterations, salt, salted, {})


async def upsert_scram_users(
    send: Send,
    passwords: Mapping[str, str],
    mechanism: Mechanism = "SCRAM-SHA-512",
    iterations: int = ITERATIONS,
) -> None:
    """Create each user, or give it this password (a fresh salt each time)."""
    if not passwords:
        return
    request = _AlterUserScramCredentials(
        [_upsertion(user, pw, mechanism, iterations) for user, pw in passwords.items()]
    )
    response = await send(request)
    refused = [
        f"{user}: {for_code(code).__name__} {message or ''}".rstrip()
        for user, code, message, _tags in response.results
        if code
    ]
    if refused:
        raise ScramError(f"cannot store SCRAM credentials: {'; '.join(refused)}")
