"""Who may use the local stack's Kafka, and for what (unless it runs `--insecure`).

SCRAM-SHA-512 users, each with a random password in
`<state>/kafka/security/credentials/<user>.password` (one line, mode 600), made once and kept
across restarts; Kafka stores only salted hashes, in its metadata log:
- admin: super user, the operator: `plantmesh stack` itself (setup, health check) and the test
  suite's own clients. `plantmesh stack env` exports it as PLANTMESH_KAFKA_USERNAME and
  PLANTMESH_KAFKA_PASSWORD_FILE.
- bridge, writer, alerting: one per service, with the ACLs of plantmesh.kafka.principals for
  the default (empty) namespace; `grant` adds those of another namespace or of test topics.

A password never reaches a command line: users are created from Python with
AlterUserScramCredentials (plantmesh.kafka.scram), which carries only a salted hash.

The broker reaches its own controller through the PLAINTEXT controller listener, as
User:ANONYMOUS, and the authorizer must let it do CLUSTER_ACTION there. An ACL can only be
created on a running cluster, so the first secured start of a data directory (new, or formatted
by an older plantmesh without users) runs Kafka once with ANONYMOUS as a super user, creates
admin and that one ACL through the controller listener, and stops it; every real start has
admin as the only super user (a super ANONYMOUS would let anyone on the machine change ACLs
through the controller port). `bootstrapped` records the cluster id this was done for.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from plantmesh.connections import KafkaConnection
from plantmesh.stack.errors import StackError
from plantmesh.stack.paths import HOST, StackConfig
from plantmesh.stack.process import (
    exited,
    force_kill,
    log_size,
    read_from,
    request_stop,
    start_detached,
    tail,
    wait_gone,
)
from plantmesh.stack.system import Progress, write_private

if TYPE_CHECKING:  # plantmesh.kafka imports aiokafka, which only a secured start needs
    from plantmesh.kafka.acls import Acl
    from plantmesh.stack.kafka import Kafka

STARTED_LINE = "Kafka Server started"

ADMIN = "admin"
SERVICE_USERS = ("bridge", "writer", "alerting")
"""plantmesh.kafka.principals.SERVICES (repeated: that module imports aiokafka)."""
USERS = (ADMIN, *SERVICE_USERS)
MECHANISM: Final = "SCRAM-SHA-512"
BROKER_PRINCIPAL = "User:ANONYMOUS"
USERNAME_VAR = "PLANTMESH_KAFKA_USERNAME"
PASSWORD_FILE_VAR = "PLANTMESH_KAFKA_PASSWORD_FILE"
PASSWORD_BYTES = 24
BOOTSTRAP_NOTE = "# First secured start only: the broker's ANONYMOUS gets its controller ACL."

T = TypeVar("T")


def security_dir(config: StackConfig) -> Path:
    return config.server_dir("kafka") / "security"


def password_path(config: StackConfig, user: str) -> Path:
    return security_dir(config) / "credentials" / f"{user}.password"


def _check_user(user: str) -> None:
    if user not in USERS:
        raise StackError(f"no Kafka user {user!r} in the stack: expected one of {', '.join(USERS)}")


def read_password(path: Path) -> str:
    try:
        line = path.read_text().split("\n", 1)[0].rstrip("\r")
    except OSError as exc:
        raise StackError(f"cannot read the Kafka password file {path}: {exc}") from None
    if not line:
        raise StackError(f"the Kafka password file {path} is empty")
    return line


def ensure_passwords(config: StackConfig) -> list[str]:
    """Every user's password file (kept, or made now); the users whose file was made now."""
    made = []
    for user in USERS:
        path = password_path(config, user)
        if not path.exists():
            write_private(path, secrets.token_urlsafe(PASSWORD_BYTES).encode() + b"\n")
            made.append(user)
    return made


def connection(
    user: str = ADMIN, config: StackConfig | None = None, client_id: str = "plantmesh"
) -> KafkaConnection:
    """How `user` (admin, bridge, writer or alerting) reaches this stack's Kafka: its username
    and password file, or PLAINTEXT without credentials when the stack runs `--insecure`. The
    password file exists once `plantmesh stack up` has started Kafka in the secured mode."""
    _check_user(user)
    cfg = config or StackConfig.from_env()
    if cfg.insecure:
        bootstrap = f"{HOST}:{cfg.ports.kafka}"
        return KafkaConnection(
            bootstrap=bootstrap, client_id=client_id, security_protocol="PLAINTEXT"
        )
    return sasl_connection(user, cfg, client_id)


def sasl_connection(
    user: str, config: StackConfig, client_id: str = "plantmesh"
) -> KafkaConnection:
    """`user`'s SASL connection, whatever mode the stack is in now."""
    return KafkaConnection(
        bootstrap=f"{HOST}:{config.ports.kafka}",
        client_id=client_id,
        username=user,
        password_file=password_path(config, user),
        sasl_mechanism=MECHANISM,
    )


def service_connection(service: str, config: StackConfig | None = None) -> KafkaConnection:
    """The connection a service's `kafka:` section takes to run as its own principal."""
    if service not in SERVICE_USERS:
        raise StackError(f"no Kafka principal for {service!r}: expected one of {SERVICE_USERS}")
    return connection(service, config, client_id=service)


def render_security(super_users: Iterable[str]) -> str:
    """The server.properties lines of the secured mode (listeners are rendered by the caller)."""
    return f"""\
sasl.enabled.mechanisms={MECHANISM}
sasl.mechanism.inter.broker.protocol={MECHANISM}
# One node never connects to another broker, so this login needs no credentials: no secret
# in this file. Clients' passwords are checked against the SCRAM hashes in the metadata log.
listener.name.sasl_plaintext.{MECHANISM.lower()}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users={";".join(super_users)}
# Every topic is created on purpose, with its layout (by its service or the admin).
auto.create.topics.enable=false
"""


def cluster_id(data_dir: Path) -> str | None:
    """The cluster id in the data directory's meta.properties; None before the first format."""
    try:
        text = (data_dir / "meta.properties").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "cluster.id":
            return value.strip()
    return None


def _marker(config: StackConfig) -> Path:
    return security_dir(config) / "bootstrapped"


def needs_bootstrap(config: StackConfig, cluster: str, made: Iterable[str]) -> bool:
    """Must the admin user and the broker's ACL be created (through the controller listener)?
    Yes for a cluster not set up yet, and when admin's password file was made anew."""
    try:
        done = _marker(config).read_text().strip()
    except OSError:
        done = ""
    return done != cluster or ADMIN in made


def mark_bootstrapped(config: StackConfig, cluster: str) -> None:
    _marker(config).write_text(f"{cluster}\n")


def secure_storage(server: Kafka, progress: Progress, upgrade: bool) -> None:
    """Before a secured start: the password files, and once per cluster the admin user and
    the broker's ACL, through a start of its own with ANONYMOUS as a super user."""
    made = ensure_passwords(server.config)
    cluster = cluster_id(server.data_dir)
    if cluster is None:
        raise StackError(f"{server.data_dir / 'meta.properties'} names no cluster.id")
    if not needs_bootstrap(server.config, cluster, made):
        return
    what = "creating the admin user and the broker's own ACL (one extra start and stop)"
    if upgrade:
        what = f"securing storage formatted without users (its data is kept): {what}"
    with progress.step(server.name, what):
        server.write_properties(True, bootstrap=True)
        try:
            _run_once(
                server,
                lambda: run_sync(
                    lambda: bootstrap_through_controller(server.config), "creating the admin user"
                ),
            )
        finally:
            server.write_properties(True)
    mark_bootstrapped(server.config, cluster)


def _run_once(server: Kafka, work: Callable[[], None]) -> None:
    """Start Kafka, do `work` once it has started, stop it again."""
    offset = log_size(server.log_path)
    proc = start_detached(server.command(), server.log_path, cwd=server.dir)
    server.pid_file.write(proc.pid)  # so `stack down` finds it, should we die meanwhile
    try:
        deadline = time.monotonic() + server.startup_timeout
        while STARTED_LINE not in read_from(server.log_path, offset):
            gone, code = exited(proc.pid)
            if gone or time.monotonic() > deadline:
                what = f"exited with code {code}" if gone else "did not start in time"
                raise StackError(
                    f"kafka {what} (the start for its security setup); last lines of "
                    f"{server.log_path}:\n" + tail(server.log_path, 30)
                )
            time.sleep(0.1)
        work()
    finally:
        if request_stop(proc.pid, server.identity) and not wait_gone(proc.pid, server.stop_timeout):
            force_kill(proc.pid, server.identity)
            wait_gone(proc.pid, 5.0)
        server.pid_file.remove()


def _aiokafka_needed() -> None:
    try:
        import aiokafka  # noqa: F401
    except ImportError:
        raise StackError(
            "the secured Kafka's users and ACLs are set up with aiokafka: install it with "
            "pip install 'plantmesh[ingest]', or bring the stack up with --insecure"
        ) from None


def broker_acls() -> list[Acl]:
    """What the broker does at its controller: register and heartbeat (CLUSTER_ACTION), and
    create Kafka's internal topics on first use (a consumer group's first FindCoordinator
    creates __consumer_offsets as the broker, not as the client)."""
    from plantmesh.kafka.acls import CLUSTER, Acl, Operation, PatternType, ResourceType

    internal = ("__consumer_offsets", "__transaction_state", "__share_group_state")
    return [
        Acl(
            BROKER_PRINCIPAL,
            ResourceType.CLUSTER,
            CLUSTER,
            PatternType.LITERAL,
            Operation.CLUSTER_ACTION,
        ),
        *(
            Acl(BROKER_PRINCIPAL, ResourceType.TOPIC, t, PatternType.LITERAL, Operation.CREATE)
            for t in internal
        ),
    ]


async def bootstrap_through_controller(config: StackConfig) -> None:
    """While ANONYMOUS is a super user: admin's credential and the broker's own ACLs."""
    _aiokafka_needed()
    from plantmesh.kafka.acls import controller_channel, create_acls
    from plantmesh.kafka.scram import upsert_scram_users

    admin = read_password(password_path(config, ADMIN))
    async with controller_channel(HOST, config.ports.kafka_controller) as send:
        await upsert_scram_users(send, {ADMIN: admin}, MECHANISM)
        await create_acls(send, broker_acls())


def default_acls() -> list[Acl]:
    """The ACLs `stack up` keeps in place: the broker's own, and the services' for the default
    namespace and group ids."""
    from plantmesh.kafka.principals import SERVICES, service_acls

    return [*broker_acls(), *(acl for service in SERVICES for acl in service_acls(service))]


async def ensure_principals(config: StackConfig) -> None:
    """As admin: every service user with its password from its file, and their default ACLs.
    Run at every secured start, so a password file edited on purpose takes effect and the ACLs
    of a newer plantmesh are added."""
    _aiokafka_needed()
    from plantmesh.kafka.acls import admin_channel, create_acls, wait_for_acls
    from plantmesh.kafka.scram import upsert_scram_users

    passwords = {u: read_password(password_path(config, u)) for u in SERVICE_USERS}
    async with admin_channel(connection(ADMIN, config)) as send:
        await upsert_scram_users(send, passwords, MECHANISM)
        await create_acls(send, default_acls())
        # Services may start right after `up`. The broker applies the metadata log in order,
        # so once it has these ACLs it also has the credentials stored before them.
        await wait_for_acls(send, default_acls())


async def grant(acls: Iterable[Acl], config: StackConfig | None = None) -> None:
    """Create ACLs as the stack's admin (e.g. plantmesh.kafka.principals.service_acls for a
    namespace, or topic_acls for a test's topics). Nothing to do when the stack runs
    `--insecure` (no authorizer)."""
    cfg = config or StackConfig.from_env()
    if cfg.insecure:
        return
    from plantmesh.kafka.acls import admin_channel, create_acls, wait_for_acls

    wanted = list(acls)
    async with admin_channel(connection(ADMIN, cfg)) as send:
        await create_acls(send, wanted)
        await wait_for_acls(send, wanted)


async def revoke(acls: Iterable[Acl], config: StackConfig | None = None) -> int:
    """Delete exactly these ACLs as the stack's admin; how many there were."""
    cfg = config or StackConfig.from_env()
    if cfg.insecure:
        return 0
    from plantmesh.kafka.acls import admin_channel, delete_acls

    async with admin_channel(connection(ADMIN, cfg)) as send:
        return await delete_acls(send, acls)


def run_sync(work: Callable[[], Awaitable[T]], what: str, timeout_s: float = 120.0) -> T:
    """Run async Kafka work from synchronous stack code, in a thread with its own event loop
    (the caller may be inside one already). Failures become StackError naming `what`."""
    result: list[T] = []
    errors: list[BaseException] = []

    async def main() -> T:
        return await asyncio.wait_for(work(), timeout_s)

    def target() -> None:
        try:
            result.append(asyncio.run(main()))
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="kafka-security", daemon=True)
    thread.start()
    thread.join()
    if errors:
        error = errors[0]
        if isinstance(error, StackError):
            raise error
        raise StackError(f"Kafka: {what} failed: {type(error).__name__}: {error}") from error
    return result[0]
