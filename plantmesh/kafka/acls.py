"""Kafka ACLs through the admin protocol. aiokafka has the wire classes for CreateAcls,
DescribeAcls and DeleteAcls but no admin calls for them, and Kafka's jars have no AclCommand:
these few functions fill the gap, with no Java tool and nothing secret on a command line.

Each function takes a `send` coroutine (a request in, its response out): `admin_channel` sends
over an authenticated client connection to any broker, `controller_channel` straight to a KRaft
controller listener (which the stack uses once, before any user exists).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from aiokafka.client import AIOKafkaClient
from aiokafka.conn import create_conn
from aiokafka.errors import for_code
from aiokafka.protocol.admin import (
    CreateAclsRequest_v1,
    DeleteAclsRequest_v1,
    DescribeAclsRequest,
)
from aiokafka.protocol.api import Request

from plantmesh.connections import KafkaConnection
from plantmesh.kafka.security import kafka_client_options

Send = Callable[[Any], Awaitable[Any]]
"""Sends one aiokafka Request and returns its response."""

CLUSTER = "kafka-cluster"
"""The name of Kafka's one CLUSTER resource."""
ANY = 1  # the wildcard of every enum in an ACL filter
ALLOW = 3


class ResourceType(IntEnum):
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5


class PatternType(IntEnum):
    LITERAL = 3
    PREFIXED = 4
    """The resource name is a prefix: `plantmesh-writer` covers `plantmesh-writer-ledger`."""


class Operation(IntEnum):
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12


class AclError(Exception):
    """The broker refused to create, delete or describe ACLs (not authorized, or no
    authorizer configured)."""


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW rule: `principal` may do `operation` on the resource, from any host."""

    principal: str
    """`User:<name>`."""
    resource: ResourceType
    name: str
    pattern: PatternType
    operation: Operation

    def __str__(self) -> str:
        pattern = "" if self.pattern is PatternType.LITERAL else f" ({self.pattern.name} pattern)"
        return f"{self.principal} {self.operation.name} {self.resource.name} {self.name}{pattern}"

    def wire(self) -> tuple[int, str, int, str, str, int, int]:
        """The CreateAcls v1 creation tuple; also an exact DeleteAcls v1 filter."""
        return (
            int(self.resource),
            self.name,
            int(self.pattern),
            self.principal,
            "*",
            int(self.operation),
            ALLOW,
        )


def principal(user: str) -> str:
    return f"User:{user}"


# aiokafka's CreateAcls and DeleteAcls classes carry one ACL per request; these carry many
# (the protocol's own shape). Version 1 is the oldest Kafka 4 accepts and the newest aiokafka has.
class _CreateAcls(Request[CreateAclsRequest_v1]):  # type: ignore[misc]
    API_KEY = 30

    def __init__(self, acls: list[Acl]) -> None:
        self._acls = acls

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> Any:
        return request_struct_class([acl.wire() for acl in self._acls])


class _DeleteAcls(Request[DeleteAclsRequest_v1]):  # type: ignore[misc]
    API_KEY = 31

    def __init__(self, acls: list[Acl]) -> None:
        self._acls = acls

    def build(self, request_struct_class: type[DeleteAclsRequest_v1]) -> Any:
        return request_struct_class([acl.wire() for acl in self._acls])


def _check(code: int, message: str | None, what: str) -> None:
    if code:
        raise AclError(f"{what}: {for_code(code).__name__}: {message or ''}".rstrip(": "))


async def create_acls(send: Send, acls: Iterable[Acl]) -> None:
    """Create the ACLs; one that exists already is left as it is (Kafka's own behaviour)."""
    wanted = sorted(set(acls))
    if not wanted:
        return
    response = await send(_CreateAcls(wanted))
    for acl, (code, message) in zip(wanted, response.creation_responses, strict=True):
        _check(code, message, f"cannot create ACL {acl}")


async def delete_acls(send: Send, acls: Iterable[Acl]) -> int:
    """Delete exactly these ACLs (each an exact filter); how many the broker deleted."""
    doomed = sorted(set(acls))
    if not doomed:
        return 0
    response = await send(_DeleteAcls(doomed))
    deleted = 0
    for acl, (code, message, matching) in zip(doomed, response.filter_responses, strict=True):
        _check(code, message, f"cannot delete ACL {acl}")
        deleted += len(matching)
    return deleted


async def describe_acls(send: Send, who: str | None = None) -> list[Acl]:
    """Every ALLOW ACL (of principal `who`, e.g. `User:bridge`, when given), sorted."""
    request = DescribeAclsRequest(ANY, None, ANY, who, None, ANY, ALLOW)
    response = await send(request)
    _check(response.error_code, response.error_message, "cannot describe ACLs")
    found = [
        Acl(who, ResourceType(rtype), name, PatternType(ptype), Operation(op))
        for rtype, name, ptype, entries in response.resources
        for who, _host, op, _permission in entries
        if rtype in ResourceType._value2member_map_ and ptype in PatternType._value2member_map_
    ]
    return sorted(found)


async def wait_for_acls(send: Send, acls: Iterable[Acl], timeout_s: float = 15.0) -> None:
    """Until the broker `send` talks to has all of `acls`: it applies what the controller
    committed a moment after CreateAcls returned, and denies until then."""
    wanted = set(acls)
    deadline = time.monotonic() + timeout_s
    while True:
        found: set[Acl] = set()
        for who in sorted({acl.principal for acl in wanted}):
            found.update(await describe_acls(send, who))
        missing = wanted - found
        if not missing:
            return
        if time.monotonic() > deadline:
            raise AclError(f"ACLs not in force after {timeout_s:.0f}s: {min(missing)}, ...")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def admin_channel(kafka: KafkaConnection, timeout_s: float = 30.0) -> AsyncIterator[Send]:
    """Send admin requests as `kafka`'s user, to a broker of the cluster (which hands ACL and
    SCRAM changes to the controller)."""
    client = AIOKafkaClient(
        **kafka_client_options(kafka),
        client_id=f"{kafka.client_id}-admin",
        request_timeout_ms=int(timeout_s * 1000),
    )
    try:
        await client.bootstrap()
        node = client.get_random_node()

        async def send(request: Any) -> Any:
            return await client.send(node, request)

        yield send
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def controller_channel(host: str, port: int, timeout_s: float = 30.0) -> AsyncIterator[Send]:
    """Send admin requests to a KRaft controller listener directly (PLAINTEXT, so the
    principal is User:ANONYMOUS: only useful while that is a super user)."""
    conn = await create_conn(host, port, request_timeout_ms=int(timeout_s * 1000))
    try:
        yield conn.send
    finally:
        conn.close()
