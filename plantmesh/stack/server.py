"""What every local server provides to the manager: provisioning into the cache, config in the
state dir, a command line, a health check and a version."""

from __future__ import annotations

import signal
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from plantmesh.stack.paths import StackConfig
from plantmesh.stack.process import Identity, PidFile, find_running
from plantmesh.stack.system import Progress, Requirement

# Loopback requests must never go through an http_proxy from the environment.
http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Server(ABC):
    name: ClassVar[str]
    """Short name used on the command line and for its state directory."""
    env_var: ClassVar[str]
    """The variable plantmesh.connections reads for this server's address."""
    port_var: ClassVar[str]
    """The variable that moves this server to another port."""
    startup_timeout: ClassVar[float] = 60.0
    stop_timeout: ClassVar[float] = 20.0
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    """What asks this server to shut down cleanly."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config

    @property
    def dir(self) -> Path:
        return self.config.server_dir(self.name)

    @property
    def log_path(self) -> Path:
        return self.dir / f"{self.name}.log"

    @property
    def pid_file(self) -> PidFile:
        return PidFile(self.dir / f"{self.name}.pid")

    @property
    @abstractmethod
    def port(self) -> int:
        """The port clients use."""

    @property
    def ports(self) -> list[int]:
        """Every port the server binds."""
        return [self.port]

    @property
    @abstractmethod
    def address(self) -> str:
        """The value of `env_var`, e.g. mqtt://127.0.0.1:11883."""

    def extra_env(self) -> dict[str, str]:
        """More variables for `plantmesh stack env` (e.g. a TLS address and its CA file)."""
        return {}

    def restart_hint(self) -> str | None:
        """For `up` finding it running: why and how to restart it (e.g. it was started without
        the authentication the stack now wants), or None."""
        return None

    @property
    def shown_address(self) -> str:
        """The address for logs and status lines: without a secret in it."""
        return self.address

    @property
    @abstractmethod
    def identity(self) -> Identity: ...

    def requirements(self) -> list[Requirement]:
        """Programs provisioning and running need now (none for what is already cached)."""
        return []

    def provision(self, progress: Progress) -> None:  # noqa: B027 - optional step
        """Download or build into the cache; a no-op when the cache already has it."""

    @abstractmethod
    def prepare(self, progress: Progress) -> None:
        """Write config files into the state dir (and initialise storage the first time)."""

    @abstractmethod
    def command(self) -> list[str]: ...

    @abstractmethod
    def healthy(self) -> bool:
        """Does the running server answer a real request?"""

    def ready(self, log_offset: int) -> bool:
        """During startup: healthy, judging the log only from `log_offset` on (this run's part)."""
        return self.healthy()

    def after_start(self, progress: Progress) -> None:  # noqa: B027 - optional step
        """Work once the server answers, e.g. creating the default database."""

    @abstractmethod
    def version(self) -> str | None: ...

    def running_pid(self) -> int | None:
        return find_running(self.pid_file, self.identity)
