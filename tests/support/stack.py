"""A server of the project's local stack of a test's own (free ports, its own state), for tests
that stop and start it: the shared servers must stay up."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from plantmesh.stack import manager
from plantmesh.stack.paths import Ports, StackConfig
from plantmesh.stack.postgres import Postgres
from tests.support.ports import free_ports


@contextmanager
def private_server(
    tmp_path: Path, name: str, env_var: str, insecure: bool = False
) -> Iterator[tuple[StackConfig, str]]:
    """One server of the stack on free ports with its own state, stopped afterwards. Yields its
    stack config (for manager.down/up during the test) and its URL (the value of `env_var`).
    `insecure`: without authentication (`plantmesh stack up --insecure`)."""
    cfg = StackConfig(
        cache=StackConfig.from_env().cache,
        state=tmp_path / "state",
        ports=Ports(
            mqtt=free_ports(0), kafka=free_ports(1), influx=free_ports(2), postgres=free_ports(0)
        ),
        insecure=insecure,
    )
    try:
        yield cfg, manager.up(cfg, only=[name], report=lambda _: None)[env_var]
    finally:
        manager.down(cfg, only=[name], report=lambda _: None)
        remove_server_files(cfg)


def remove_server_files(cfg: StackConfig) -> None:
    """What a stopped private stack left outside its state directory: PostgreSQL's data when it
    ran as the `postgres` account (under /var/lib/plantmesh)."""
    home = Postgres(cfg).home
    if not home.is_relative_to(cfg.state):
        shutil.rmtree(home, ignore_errors=True)
