"""Apache Kafka as a single KRaft node, its jars resolved from Maven Central with Maven.
Secured unless the stack runs `--insecure`: SASL/SCRAM clients and ACLs, users and their
password files in plantmesh.stack.kafka_security."""

from __future__ import annotations

import asyncio
import re
import shutil
import threading
from pathlib import Path
from typing import Any

from plantmesh.connections import KafkaConnection
from plantmesh.stack import kafka_security as security
from plantmesh.stack.errors import StackError
from plantmesh.stack.paths import HOST, KAFKA_PORT_VAR, KAFKA_VERSION, LOG4J_SLF4J_VERSION, Ports
from plantmesh.stack.process import Identity, port_accepts, read_from
from plantmesh.stack.server import Server
from plantmesh.stack.system import Progress, Requirement, file_lock, find_program, run_logged

MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
STARTED_LINE = security.STARTED_LINE
HEAP = "-Xmx768m"


def render_pom(kafka_version: str = KAFKA_VERSION, log4j_version: str = LOG4J_SLF4J_VERSION) -> str:
    return f"""\
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <!-- Written by `plantmesh stack up`: only used to resolve Kafka's runtime jars. -->
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.plantmesh</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{kafka_version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j_version}</version>
    </dependency>
  </dependencies>
</project>
"""


def render_server_properties(
    ports: Ports, data_dir: Path, secure: bool = True, bootstrap: bool = False
) -> str:
    """`secure`: clients authenticate with SCRAM and ACLs apply; `bootstrap`: the one start
    that lets the broker's ANONYMOUS create its own controller ACL (kafka_security)."""
    client = "SASL_PLAINTEXT" if secure else "PLAINTEXT"
    supers = [f"User:{security.ADMIN}", *([security.BROKER_PRINCIPAL] if bootstrap else [])]
    mode = (
        (f"{security.BOOTSTRAP_NOTE}\n" if bootstrap else "") + security.render_security(supers)
        if secure
        else "# --insecure: anyone may do anything, and topics are created on first use.\n"
        "auto.create.topics.enable=true\n"
    )
    return f"""\
# Written by `plantmesh stack up` on every start: edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{HOST}:{ports.kafka_controller}
# The controller listener stays PLAINTEXT, on loopback only.
listeners={client}://{HOST}:{ports.kafka},CONTROLLER://{HOST}:{ports.kafka_controller}
advertised.listeners={client}://{HOST}:{ports.kafka}
controller.listener.names=CONTROLLER
listener.security.protocol.map={client}:{client},CONTROLLER:PLAINTEXT
inter.broker.listener.name={client}
{mode}log.dirs={data_dir}
num.partitions=4
group.initial.rebalance.delay.ms=0
# One node: every internal topic has a single replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
"""


def render_log4j2(log_path: Path) -> str:
    # Without a log4j2 config Kafka 4 prints nothing at all; INFO to one rolling file.
    return f"""\
# Written by `plantmesh stack up` on every start: edits are overwritten.
status = warn
name = plantmesh-kafka
# Keep logging while Kafka's own shutdown hook runs, so a clean stop is visible in the log.
shutdownHook = disable
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {log_path}
appender.file.filePattern = {log_path}.%i
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = WARN
# Per-partition chatter (every topic created or deleted writes dozens of INFO lines): a test
# session's thousands of topics would roll the log over within a few runs.
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.partition.name = kafka.cluster.Partition
logger.partition.level = WARN
logger.logmanager.name = kafka.log.LogManager
logger.logmanager.level = WARN
logger.storage.name = org.apache.kafka.storage.internals.log
logger.storage.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = WARN
logger.coordinator.name = org.apache.kafka.coordinator
logger.coordinator.level = WARN
"""


def metadata_ok(
    bootstrap: str, timeout: float = 5.0, credentials: KafkaConnection | None = None
) -> bool | None:
    """A real Metadata request answered with at least one broker, authenticated with
    `credentials` when given. None when aiokafka is not installed (the edge-only install), so
    the caller can fall back to a port check."""
    try:
        from aiokafka.client import AIOKafkaClient

        from plantmesh.kafka.security import kafka_client_options
    except ImportError:
        return None

    async def probe() -> bool:
        options: dict[str, Any] = {}
        if credentials is not None:
            options = kafka_client_options(credentials)
        options["bootstrap_servers"] = bootstrap
        client = AIOKafkaClient(**options, request_timeout_ms=int(timeout * 1000))
        try:
            await asyncio.wait_for(client.bootstrap(), timeout)
            return len(client.cluster.brokers()) > 0
        finally:
            await client.close()

    result: list[bool] = [False]

    def run() -> None:  # its own thread: the caller may already be inside an event loop
        try:
            result[0] = asyncio.run(probe())
        except Exception:
            result[0] = False

    thread = threading.Thread(target=run, name="kafka-health", daemon=True)
    thread.start()
    thread.join(timeout + 2)
    return result[0]


class Kafka(Server):
    name = "kafka"
    port_var = KAFKA_PORT_VAR
    env_var = "PLANTMESH_KAFKA_BOOTSTRAP"
    startup_timeout = 120.0
    stop_timeout = 30.0

    @property
    def home(self) -> Path:
        return self.config.cache / f"kafka-{KAFKA_VERSION}"

    @property
    def libs(self) -> Path:
        return self.home / "libs"

    @property
    def complete_marker(self) -> Path:
        return self.home / ".complete"

    @property
    def properties_path(self) -> Path:
        return self.dir / "server.properties"

    @property
    def log4j_path(self) -> Path:
        return self.dir / "log4j2.properties"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def port(self) -> int:
        return self.config.ports.kafka

    @property
    def ports(self) -> list[int]:
        return [self.port, self.config.ports.kafka_controller]

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def identity(self) -> Identity:
        return Identity("java", str(self.properties_path), also=(MAIN_CLASS,))

    def _java(self) -> str:
        return find_program("java") or "java"

    def _classpath(self) -> str:
        return f"{self.libs}/*"  # expanded by the JVM, not a shell

    def requirements(self) -> list[Requirement]:
        needs = [Requirement("java", ("openjdk-17-jre-headless",))]
        if not self.complete_marker.exists():
            needs.append(Requirement("mvn", ("maven",)))
        return needs

    def provision(self, progress: Progress) -> None:
        with file_lock(self.config.cache / "kafka.lock"):
            if self.complete_marker.exists():
                return
            self.home.mkdir(parents=True, exist_ok=True)
            (self.home / "pom.xml").write_text(render_pom())
            staging = self.home / "libs.partial"
            shutil.rmtree(staging, ignore_errors=True)
            with progress.step(
                self.name,
                f"resolving Kafka {KAFKA_VERSION} jars with Maven (first time only, ~10-60 s)",
            ):
                run_logged(
                    [
                        find_program("mvn") or "mvn",
                        "-B",
                        "-q",
                        "dependency:copy-dependencies",
                        "-DincludeScope=runtime",
                        f"-DoutputDirectory={staging}",
                    ],
                    self.home / "mvn.log",
                    cwd=self.home,
                )
            if not (staging / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
                raise StackError(
                    f"Maven finished but kafka_2.13-{KAFKA_VERSION}.jar is not in {staging}"
                )
            shutil.rmtree(self.libs, ignore_errors=True)
            staging.rename(self.libs)
            self.complete_marker.write_text(f"{KAFKA_VERSION}\n")

    def serves_sasl(self) -> bool:
        """Was the running (or last) broker started with the SASL listener? One started by an
        older plantmesh, or `--insecure`, has none until it is restarted."""
        try:
            return "SASL_PLAINTEXT://" in self.properties_path.read_text()
        except OSError:
            return False

    def bootstrapping(self) -> bool:
        try:
            return security.BOOTSTRAP_NOTE in self.properties_path.read_text()
        except OSError:
            return False

    def extra_env(self) -> dict[str, str]:
        """The admin's credentials once a secured start made them (else nothing, and clients
        connect without credentials)."""
        admin = security.password_path(self.config, security.ADMIN)
        if self.config.insecure or not self.serves_sasl() or not admin.exists():
            return {}
        return {security.USERNAME_VAR: security.ADMIN, security.PASSWORD_FILE_VAR: str(admin)}

    def restart_hint(self) -> str | None:
        if self.config.insecure or self.serves_sasl():
            return None
        return (
            "runs without authentication (started by an older plantmesh or with --insecure): "
            "`plantmesh stack down kafka && plantmesh stack up kafka` secures it"
        )

    def prepare(self, progress: Progress) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log4j_path.write_text(render_log4j2(self.log_path))
        secure = not self.config.insecure
        self.write_properties(secure)
        formatted = (self.data_dir / "meta.properties").exists()
        if not formatted:
            self._format(progress)
        if secure:
            security.secure_storage(self, progress, upgrade=formatted)

    def write_properties(self, secure: bool, bootstrap: bool = False) -> None:
        text = render_server_properties(self.config.ports, self.data_dir, secure, bootstrap)
        self.properties_path.write_text(text)

    def _format(self, progress: Progress) -> None:
        # No --add-scram: it would put a password on the command line (users: kafka_security).
        with progress.step(self.name, "formatting KRaft storage (first start only)"):
            tool = [self._java(), "-cp", self._classpath(), self._log4j_option(), STORAGE_TOOL]
            out = run_logged(
                [*tool, "random-uuid"], self.log_path, cwd=self.dir, capture_stdout=True
            )
            cluster_id = out.strip()
            if not re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id):
                raise StackError(f"StorageTool random-uuid printed no cluster id: {out[-300:]!r}")
            run_logged(
                [*tool, "format", "-t", cluster_id, "-c", str(self.properties_path)],
                self.log_path,
                cwd=self.dir,
            )

    def after_start(self, progress: Progress) -> None:
        if self.config.insecure:
            return
        security.run_sync(
            lambda: security.ensure_principals(self.config),
            "creating the service users and their ACLs",
        )
        progress(
            self.name,
            f"SASL/SCRAM and ACLs on; password files in {security.security_dir(self.config)}",
        )

    def _log4j_option(self) -> str:
        return f"-Dlog4j2.configurationFile={self.log4j_path}"

    def command(self) -> list[str]:
        return [
            self._java(),
            HEAP,
            # As Kafka's own start scripts do: pauses of the broker show up in its latency.
            f"-Xlog:gc:file={self.dir / 'gc.log'}:time,uptime:filecount=3,filesize=10M",
            "-Djava.awt.headless=true",
            self._log4j_option(),
            "-cp",
            self._classpath(),
            MAIN_CLASS,
            str(self.properties_path),
        ]

    def healthy(self) -> bool:
        if not port_accepts(self.port):
            return False
        credentials = None
        if self.serves_sasl():
            if self.bootstrapping():  # a setup start whose `up` died: never counts as up
                return False
            credentials = security.sasl_connection(security.ADMIN, self.config)
        answered = metadata_ok(self.address, credentials=credentials)
        return True if answered is None else answered

    def ready(self, log_offset: int) -> bool:
        return STARTED_LINE in read_from(self.log_path, log_offset) and self.healthy()

    def version(self) -> str | None:
        for jar in sorted(self.libs.glob("kafka_2.13-*.jar")):
            match = re.fullmatch(r"kafka_2\.13-(.+)\.jar", jar.name)
            if match:
                return match.group(1)
        return None
