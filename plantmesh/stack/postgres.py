"""PostgreSQL from the Debian package, run with our own data directory (never the system
cluster): the alerting service's system of record.

PostgreSQL refuses to run as root. As root the server runs as the `postgres` user (`setpriv`
execs it, so the pid we record is the postmaster's own); its data directory must then be
reachable by that user, which `~/.cache` of root is not, so it moves to /var/lib/plantmesh."""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
from pathlib import Path

from plantmesh.stack.errors import StackError
from plantmesh.stack.paths import HOST, POSTGRES_PORT_VAR
from plantmesh.stack.process import Identity
from plantmesh.stack.server import Server
from plantmesh.stack.system import Progress, Requirement, run_logged

USER = "plantmesh"
DATABASE = "plantmesh"
SERVICE_ACCOUNT = "postgres"
"""The account Debian's package creates; the server runs as it when we are root."""
SHARED_ROOT = Path("/var/lib/plantmesh")


def bin_dir() -> Path | None:
    """The newest installed server's binaries (Debian keeps one directory per major version)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    return Path(on_path).parent if on_path else None


def reachable_by(path: Path, uid: int, gids: set[int]) -> bool:
    """Can this user walk down to `path` (execute permission on every ancestor)?"""
    for ancestor in [*reversed(path.parents), path]:
        try:
            info = ancestor.stat()
        except FileNotFoundError:
            return True  # we create it, with permissions we choose
        if info.st_uid == uid:
            bit = stat.S_IXUSR
        elif info.st_gid in gids:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def server_options(port: int, socket_dir: Path) -> list[str]:
    return [
        "-p",
        str(port),
        "-k",
        str(socket_dir),
        "-c",
        f"listen_addresses={HOST}",
        # Logs go to stderr, which is the stack's log file.
        "-c",
        "logging_collector=off",
        "-c",
        "max_connections=200",
    ]


class Postgres(Server):
    name = "postgres"
    port_var = POSTGRES_PORT_VAR
    env_var = "PLANTMESH_DATABASE_URL"
    startup_timeout = 60.0
    stop_timeout = 30.0
    stop_signal = signal.SIGINT
    """PostgreSQL's "fast" shutdown; SIGTERM ("smart") waits for every client to leave."""

    @property
    def port(self) -> int:
        return self.config.ports.postgres

    @property
    def runs_as_root(self) -> bool:
        return os.geteuid() == 0

    @property
    def account(self) -> pwd.struct_passwd:
        if not self.runs_as_root:
            return pwd.getpwuid(os.geteuid())
        try:
            return pwd.getpwnam(SERVICE_ACCOUNT)
        except KeyError:
            raise StackError(
                f"user {SERVICE_ACCOUNT!r} not found: PostgreSQL will not run as root; "
                "install Debian's postgresql package, which creates it"
            ) from None

    @property
    def home(self) -> Path:
        """Data directory, socket directory and password file: reachable by the server's user."""
        mine = self.dir / "server"
        if not self.runs_as_root:
            return mine
        try:
            account = self.account
        except StackError:
            return mine
        groups = set(os.getgrouplist(account.pw_name, account.pw_gid))
        if reachable_by(mine, account.pw_uid, groups):
            return mine
        digest = hashlib.sha256(str(self.config.state).encode()).hexdigest()[:12]
        return SHARED_ROOT / f"postgres-{digest}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "socket"

    @property
    def password_file(self) -> Path:
        return self.dir / "password"

    def password(self) -> str:
        """Made once per stack, readable by its owner only."""
        if not self.password_file.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(24))
        return self.password_file.read_text().strip()

    @property
    def address(self) -> str:
        return f"postgresql://{USER}:{self.password()}@{HOST}:{self.port}/{DATABASE}"

    @property
    def shown_address(self) -> str:
        return f"postgresql://{USER}:***@{HOST}:{self.port}/{DATABASE}"

    @property
    def identity(self) -> Identity:
        return Identity("postgres", str(self.data_dir))

    def binary(self, program: str) -> str:
        found = bin_dir()
        if found is None:
            raise StackError("PostgreSQL not found: apt-get install -y postgresql")
        return str(found / program)

    def requirements(self) -> list[Requirement]:
        if bin_dir() is not None:
            return []
        return [Requirement("/usr/lib/postgresql/15/bin/postgres", ("postgresql",))]

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if not self.runs_as_root:
            return argv
        name = self.account.pw_name
        return ["setpriv", f"--reuid={name}", f"--regid={name}", "--init-groups", "--", *argv]

    def prepare(self, progress: Progress) -> None:
        account = self.account
        for directory in (self.home, self.socket_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chown(directory, account.pw_uid, account.pw_gid)
        if (self.data_dir / "PG_VERSION").exists():
            return
        pwfile = self.home / "initdb-password"
        pwfile.write_text(self.password() + "\n")
        os.chmod(pwfile, 0o600)
        os.chown(pwfile, account.pw_uid, account.pw_gid)
        try:
            with progress.step(self.name, f"initdb {self.data_dir}"):
                run_logged(
                    self._as_server_user(
                        [
                            self.binary("initdb"),
                            "-D",
                            str(self.data_dir),
                            "-A",
                            "scram-sha-256",
                            f"--pwfile={pwfile}",
                            "-U",
                            USER,
                            "-E",
                            "UTF8",
                            "--no-locale",
                        ]
                    ),
                    self.log_path,
                    cwd=self.home,
                )
        finally:
            pwfile.unlink(missing_ok=True)

    def command(self) -> list[str]:
        return self._as_server_user(
            [
                self.binary("postgres"),
                "-D",
                str(self.data_dir),
                *server_options(self.port, self.socket_dir),
            ]
        )

    def healthy(self) -> bool:
        try:
            done = subprocess.run(
                [self.binary("pg_isready"), "-q", "-h", HOST, "-p", str(self.port), "-t", "2"],
                capture_output=True,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired, StackError):
            return False
        return done.returncode == 0

    def after_start(self, progress: Progress) -> None:
        """The application database, made once (initdb only makes `postgres`)."""
        env = {**os.environ, "PGPASSWORD": self.password()}
        base = ["-h", HOST, "-p", str(self.port), "-U", USER]
        query = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"
        found = run_logged(
            [self.binary("psql"), *base, "-d", "postgres", "-tAc", query],
            self.log_path,
            env=env,
            capture_stdout=True,
        )
        if found.strip() != "1":
            run_logged([self.binary("createdb"), *base, DATABASE], self.log_path, env=env)

    def version(self) -> str | None:
        try:
            out = subprocess.run(
                [self.binary("postgres"), "--version"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout
        except (OSError, StackError):
            return None
        match = re.search(r"(\d+\.\d+)", out)
        return match.group(1) if match else None
