"""The web console's active alert board with 1,000 active alerts, rendered in a real browser.

    .venv/bin/python benchmarks/bench_console.py [--alerts 1000] [--runs 5] [--sqlite]

1,000 RAISED alerts (3 plants x 5 lines, one machine each) recorded through AlarmStore.record
into a database of the benchmark's own: a temporary database on the PostgreSQL server of
$PLANTMESH_DATABASE_URL (the local stack's: `eval "$(plantmesh stack env)"`), dropped afterwards,
or a temporary SQLite file with --sqlite. The console runs in uvicorn on 127.0.0.1 in a thread
of its own; Debian's chromium (Playwright) logs in, then each run navigates to /console/alerts
and waits until every alert's row is in the page. Printed: the server's render time alone
(one HTTP GET) and navigation-to-fully-rendered in the browser (median and best of the runs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import uvicorn

from alerting.api.app import make_app
from alerting.api.roles import Role
from alerting.api.tokens import create_token
from alerting.records.database import open_database
from alerting.records.migrate import upgrade
from alerting.records.store import AlarmStore
from plantmesh.contracts import AlertEvent, AlertEventKind, AssetPath, Evidence, Severity

T = TypeVar("T")
T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
CHROMIUM = os.environ.get("PLANTMESH_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PRIORITIES = [Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]


def event(i: int) -> AlertEvent:
    plant, line = f"plant-{'abc'[i % 3]}", f"line{i // 3 % 5 + 1}"
    return AlertEvent(
        alert_id=f"bench{i:05d}",
        kind=AlertEventKind.RAISED,
        issue_type="vibration-instability",
        rule="mill-vibration",
        rule_version="0123456789ab",
        machine_class="mill",
        asset=AssetPath.parse(f"{plant}/milling/{line}/mill-{i:04d}"),
        signal="vibration_mm_s",
        severity=PRIORITIES[i % 4],
        at=T0 + timedelta(seconds=i),
        evidence=Evidence(summary=f"vibration above 7.1 mm/s (alert {i})", condition="> 7.1"),
    )


class Server:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-console")
        self.thread.start()
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    async def start(self, url: str, alerts: int) -> tuple[AlarmStore, str, int]:
        engine = open_database(url)
        await upgrade(engine)
        store = AlarmStore(engine, clock=lambda: T0 + timedelta(hours=1))
        began = time.perf_counter()
        for i in range(alerts):
            await store.record(event(i))
        print(f"recorded {alerts} alerts in {time.perf_counter() - began:.1f} s")
        token = await create_token(engine, "bench", Role.HQ, ["*"], store.clock())
        config = uvicorn.Config(
            make_app(store), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
        )
        config.timeout_graceful_shutdown = 2
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                await self.task
            await asyncio.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return store, token, port

    async def stop(self, store: AlarmStore) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            await self.task
        await store.engine.dispose()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


def measure(base: str, token: str, alerts: int, runs: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    seconds = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/console/login")
            page.get_by_label("API token").fill(token)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{base}/console/alerts")
            for _ in range(runs):
                page.goto("about:blank")
                began = time.perf_counter()
                page.goto(f"{base}/console/alerts", wait_until="load")
                page.wait_for_function(
                    f"document.querySelectorAll('tr[data-alarm-id]').length === {alerts}",
                    timeout=120_000,
                )
                seconds.append(time.perf_counter() - began)
        finally:
            browser.close()
    return seconds


def _admin(server: str, statement: str) -> None:
    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(server)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sqlite", action="store_true", help="a temporary SQLite file instead")
    args = parser.parse_args()
    server_url = os.environ.get("PLANTMESH_DATABASE_URL")
    temp = tempfile.TemporaryDirectory()
    made_db = ""
    if args.sqlite or not server_url:
        url, where = f"sqlite:///{temp.name}/alarms.db", "SQLite"
    else:
        made_db = f"bench{uuid.uuid4().hex[:10]}"
        _admin(server_url, f'CREATE DATABASE "{made_db}"')
        url = urlunsplit(urlsplit(server_url)._replace(path=f"/{made_db}"))
        where = "PostgreSQL"
    server = Server()
    try:
        store, token, port = server.call(server.start(url, args.alerts))
        base = f"http://127.0.0.1:{port}"
        try:
            cookies = {"plantmesh_console": token}
            began = time.perf_counter()
            page = httpx.get(f"{base}/console/alerts", cookies=cookies, timeout=60, trust_env=False)
            render = time.perf_counter() - began
            assert page.status_code == 200, page.status_code
            assert page.text.count("data-alarm-id=") == args.alerts
            seconds = measure(base, token, args.alerts, args.runs)
        finally:
            server.call(server.stop(store))
    finally:
        server.close()
        if made_db and server_url:
            _admin(server_url, f'DROP DATABASE "{made_db}" WITH (FORCE)')
        temp.cleanup()
    size = len(page.content) / 1024
    print(f"store: {where}; {args.alerts} active alerts; board page {size:.0f} KiB")
    print(f"server render (one GET): {render * 1000:.0f} ms")
    print(
        f"browser, navigation to all {args.alerts} rows rendered: median "
        f"{statistics.median(seconds) * 1000:.0f} ms, best {min(seconds) * 1000:.0f} ms "
        f"({args.runs} runs)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
