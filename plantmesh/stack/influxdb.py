"""InfluxDB 1.8.10 built from its Go module (Debian only ships 1.6, which lacks the /api/v2
endpoints influxdb-client uses); Flux enabled so the v2 write and query APIs work. Secured unless
the stack runs `--insecure`: users and token files in plantmesh.stack.influx_security."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
from pathlib import Path

from plantmesh.influxql import TOKEN_FILE_VAR
from plantmesh.stack.errors import StackError
from plantmesh.stack.go_install import go_environment
from plantmesh.stack.influx_security import ADMIN, InfluxSecurity, influxql, security_dir
from plantmesh.stack.paths import HOST, INFLUX_PORT_VAR, INFLUXDB_VERSION, Ports
from plantmesh.stack.process import Identity
from plantmesh.stack.server import Server, http
from plantmesh.stack.system import Progress, Requirement, file_lock, find_program, run_logged

MODULE = "github.com/influxdata/influxdb/cmd/influxd"
DEFAULT_DATABASE = "plantmesh"


def _toml(path: Path) -> str:
    return json.dumps(str(path))  # a JSON string is a valid TOML basic string


def render_config(ports: Ports, state_dir: Path, secure: bool = True) -> str:
    # pprof-auth-enabled only takes effect with pprof-enabled: with pprof off, /debug/vars and
    # /debug/requests are served to anyone again. /ping stays open for health checks.
    auth = (
        """
  auth-enabled = true
  pprof-enabled = true
  pprof-auth-enabled = true
  ping-auth-enabled = false"""
        if secure
        else ""
    )
    return f"""\
# Written by `plantmesh stack up` on every start: edits are overwritten.
reporting-disabled = true
bind-address = "{HOST}:{ports.influx_rpc}"

[meta]
  dir = {_toml(state_dir / "meta")}

[data]
  dir = {_toml(state_dir / "data")}
  wal-dir = {_toml(state_dir / "wal")}
  query-log-enabled = false

[http]
  enabled = true
  bind-address = "{HOST}:{ports.influx}"
  log-enabled = false
  flux-enabled = true{auth}

[monitor]
  store-enabled = false
"""


def query(url: str, statement: str, token: str = "", timeout: float = 10.0) -> None:
    """POST an InfluxQL statement to /query (in the body, not the URL); StackError on failure.
    `token`: `user:password` ("" for none)."""
    status, error = influxql(url, statement, token, timeout)
    if status != 200 or error:
        raise StackError(f"InfluxDB {url}: {statement!r} failed (HTTP {status}): {error}")


def ping(url: str, timeout: float = 2.0) -> str | None:
    """The server's version if GET /ping answers 204 with X-Influxdb-Version, else None."""
    try:
        with http.open(f"{url}/ping", timeout=timeout) as response:
            version = response.headers.get("X-Influxdb-Version")
            return str(version) if response.status == 204 and version else None
    except (OSError, urllib.error.URLError):
        return None


class InfluxDB(Server):
    name = "influxdb"
    port_var = INFLUX_PORT_VAR
    env_var = "PLANTMESH_INFLUX_URL"
    startup_timeout = 60.0
    stop_timeout = 20.0

    @property
    def home(self) -> Path:
        return self.config.cache / f"influxdb-{INFLUXDB_VERSION}"

    @property
    def binary(self) -> Path:
        return self.home / "bin" / "influxd"

    @property
    def config_path(self) -> Path:
        return self.dir / "influxdb.conf"

    @property
    def security(self) -> InfluxSecurity:
        return InfluxSecurity(security_dir(self.config), self.address)

    @property
    def port(self) -> int:
        return self.config.ports.influx

    @property
    def ports(self) -> list[int]:
        return [self.port, self.config.ports.influx_rpc]

    @property
    def address(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def identity(self) -> Identity:
        return Identity("influxd", str(self.config_path))

    def extra_env(self) -> dict[str, str]:
        """The admin's token file, once `up` made it (before, or `--insecure`: nothing, and
        clients send no credentials)."""
        admin = self.security.path(ADMIN)
        return {} if self.config.insecure or not admin.exists() else {TOKEN_FILE_VAR: str(admin)}

    def built_version(self) -> str | None:
        if not self.binary.exists():
            return None
        try:
            out = subprocess.run(
                [str(self.binary), "version"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout
        except OSError:
            return None
        match = re.search(r"InfluxDB v(\S+)", out)
        return match.group(1) if match else None

    def requirements(self) -> list[Requirement]:
        if self.built_version() == INFLUXDB_VERSION:
            return []
        return [Requirement("go", ("golang-go",))]

    def provision(self, progress: Progress) -> None:
        with file_lock(self.config.cache / "influxdb.lock"):
            if self.built_version() == INFLUXDB_VERSION:
                return
            self.home.mkdir(parents=True, exist_ok=True)
            env = go_environment(self.binary.parent)  # InfluxDB 1.8's Flux needs no cgo
            with progress.step(
                self.name,
                f"building InfluxDB {INFLUXDB_VERSION} with go (first time only, ~1-2 min)",
            ):
                run_logged(
                    [
                        find_program("go") or "go",
                        "install",
                        "-ldflags",
                        f"-X main.version={INFLUXDB_VERSION}",
                        f"{MODULE}@v{INFLUXDB_VERSION}",
                    ],
                    self.home / "go-build.log",
                    cwd=self.home,
                    env=env,
                )
            built = self.built_version()
            if built != INFLUXDB_VERSION:
                raise StackError(
                    f"{self.binary} reports version {built!r}, expected {INFLUXDB_VERSION}"
                )

    def prepare(self, progress: Progress) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        secure = not self.config.insecure
        self.config_path.write_text(render_config(self.config.ports, self.dir, secure))

    def command(self) -> list[str]:
        return [str(self.binary), "run", "-config", str(self.config_path)]

    def healthy(self) -> bool:
        return ping(self.address) is not None

    def after_start(self, progress: Progress) -> None:
        security = None if self.config.insecure else self.security
        admin = security.admin_token() if security is not None else ""
        # CREATE DATABASE is idempotent in InfluxDB 1.x; GRANT needs the database to exist.
        query(self.address, f"CREATE DATABASE {DEFAULT_DATABASE}", admin)
        if security is not None:
            security.ensure_users(admin, DEFAULT_DATABASE)
            progress(self.name, f"authentication on; users' token files in {security.dir}")
        progress(self.name, f"database {DEFAULT_DATABASE!r} ready")

    def version(self) -> str | None:
        return ping(self.address) or self.built_version()
