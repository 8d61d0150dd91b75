"""A running alarm API for the tests that talk to it over HTTP (fuzzing, the CLI)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

from alerting.api.roles import Role
from alerting.api.tokens import create_token
from alerting.records.store import AlarmStore
from tests.support.alarms import Clock, alert_event, migrated
from tests.support.ports import free_port
from tests.support.waiting import wait_for


def _seed(url: str) -> dict[str, str]:
    """Two alarms (plant-a, plant-b) and two tokens, made before the service starts."""

    async def run() -> dict[str, str]:
        async with migrated(url) as engine:
            store = AlarmStore(engine, clock=Clock())
            await store.record(alert_event("a1", plant="plant-a"))
            await store.record(alert_event("b1", plant="plant-b"))
            now = store.clock()
            return {
                "admin": await create_token(engine, "admin", Role.ADMIN, ["*"], now),
                "operator": await create_token(engine, "ops-a", Role.OPERATOR, ["plant-a"], now),
            }

    found: dict[str, str] = {}
    thread = threading.Thread(target=lambda: found.update(asyncio.run(run())))
    thread.start()
    thread.join()
    return found


class Api:
    def __init__(self, base: str, tokens: dict[str, str]) -> None:
        self.base = base
        self.tokens = tokens

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@contextmanager
def running_api(
    home: Path, kafka_bootstrap: str, influx: tuple[str, str] | None = None
) -> Iterator[Api]:
    """The alarm service as deployed, on SQLite with two alarms (plant-a, plant-b) and two
    tokens (admin of every plant, operator of plant-a), its API on a free port; `influx`
    (url, database): where it reads history and the ledger (backtests, scorecards)."""
    url = f"sqlite:///{home / 'alarms.db'}"
    tokens = _seed(url)
    port = free_port()
    config = {
        "namespace": f"fuzz{port}",
        "kafka": {"bootstrap": kafka_bootstrap},
        "database": {"url": url},
        "api": {"port": port},
    }
    if influx is not None:
        config["influxdb"] = {"url": influx[0], "bucket": f"{influx[1]}/autogen"}
    (home / "alarms.yaml").write_text(yaml.safe_dump(config))
    log = (home / "alarms.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "alerting", "alarms", "--config", str(home / "alarms.yaml")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    log.close()
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return proc.poll() is not None  # died: stop waiting, the assert below says so

    try:
        wait_for(up, 60, "the alarm API")
        assert proc.poll() is None, (home / "alarms.log").read_text()
        yield Api(base, tokens)
    finally:
        proc.terminate()
        proc.wait(30)
