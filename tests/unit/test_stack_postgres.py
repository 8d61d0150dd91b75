"""The local stack's PostgreSQL: where its data lives, who runs it, and its password kept out of
what is shown."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantmesh.stack.paths import Ports, StackConfig
from plantmesh.stack.postgres import SHARED_ROOT, Postgres, reachable_by


def _server(tmp_path: Path) -> Postgres:
    return Postgres(
        StackConfig(cache=tmp_path, state=tmp_path / "state", ports=Ports(postgres=35432))
    )


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user may enter (pytest's own base directory is private)."""
    path = Path(tempfile.mkdtemp(prefix="plantmesh-pg-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_reachable_needs_execute_on_every_ancestor(open_dir: Path) -> None:
    outer = open_dir / "outer"
    inner = outer / "inner"
    inner.mkdir(parents=True)
    stranger = 54321
    outer.chmod(0o700)
    assert not reachable_by(inner, stranger, {54321})
    outer.chmod(0o701)
    assert reachable_by(inner, stranger, {54321})
    assert reachable_by(inner / "not-yet" / "made", stranger, {54321})
    owner = outer.stat().st_uid
    outer.chmod(0o100)
    assert reachable_by(inner, owner, set())


def test_password_is_made_once_and_private(tmp_path: Path) -> None:
    server = _server(tmp_path)
    first = server.password()
    assert len(first) >= 24
    assert server.password() == first
    assert stat.S_IMODE(server.password_file.stat().st_mode) == 0o600
    assert f":{first}@127.0.0.1:35432/plantmesh" in server.address
    assert first not in server.shown_address
    assert server.shown_address == "postgresql://plantmesh:***@127.0.0.1:35432/plantmesh"


def test_server_command_never_runs_postgres_as_root(tmp_path: Path) -> None:
    server = _server(tmp_path)
    command = server.command()
    if os.geteuid() == 0:
        assert command[0] == "setpriv"
        assert "--reuid=postgres" in command
        executed = command[command.index("--") + 1 :]
    else:
        executed = command
    assert Path(executed[0]).name == "postgres"
    assert executed[executed.index("-D") + 1] == str(server.data_dir)
    assert "listen_addresses=127.0.0.1" in executed
    assert server.stop_signal.name == "SIGINT"  # fast shutdown: does not wait for clients


@pytest.mark.skipif(os.geteuid() != 0, reason="the data directory moves only when run as root")
def test_as_root_the_data_moves_where_the_postgres_account_can_reach(open_dir: Path) -> None:
    hidden = open_dir / "hidden"
    hidden.mkdir(mode=0o700)
    hidden.chmod(0o700)
    server = Postgres(StackConfig(cache=hidden, state=hidden / "state"))
    assert server.home.parent == SHARED_ROOT
    assert server.home.name.startswith("postgres-")
    other = Postgres(StackConfig(cache=hidden, state=hidden / "other"))
    assert other.home != server.home  # two stacks, two clusters
    hidden.chmod(0o755)
    assert server.home.is_relative_to(hidden)
