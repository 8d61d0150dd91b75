"""The console's app on a real port (127.0.0.1, a free one) in a thread of its own, over a
migrated alarm database; and the browser settings the tests share."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import uvicorn

from alerting.api.app import make_app
from alerting.api.roles import Role
from alerting.api.tokens import create_token
from alerting.records.database import open_database
from alerting.records.migrate import upgrade
from alerting.records.store import AlarmStore
from tests.support.alarms import Clock
from tests.support.waiting import SCALE

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

T = TypeVar("T")

CHROMIUM = Path(os.environ.get("PLANTMESH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(os.environ.get("PLANTMESH_ARTIFACTS", "build/test-artifacts"))
AXE = Path(
    os.environ.get(
        "PLANTMESH_AXE_CORE",
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "plantmesh" / "axe-core",
    )
)
WAIT_MS = 15_000 * SCALE
"""How long a browser expectation may take before it fails (conditions return at once)."""
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.up = asyncio.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.up.set()


class Console:
    """The console's app on a real port, in a loop of its own thread: `call` runs a coroutine
    there (the store's connections belong to that loop), so a test records alerts while the
    browser watches."""

    def __init__(self, database_url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="console-server")
        self._thread.start()
        self._server: _Server | None = None
        self._serving: asyncio.Task[None] | None = None
        self.store = self.call(self._start(database_url))
        assert self._server is not None
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.base: str = f"http://127.0.0.1:{port}"
        self.tokens: dict[str, str] = {}

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout * SCALE)

    async def _start(self, url: str) -> AlarmStore:
        engine = open_database(url)
        await upgrade(engine)
        store = AlarmStore(engine, clock=Clock())
        app = make_app(store)
        app.state.console_poll_s = 0.2
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = _Server(config)
        self._serving = asyncio.create_task(self._server.serve(), name="console-uvicorn")
        up = asyncio.ensure_future(self._server.up.wait())
        await asyncio.wait([up, self._serving], return_when=asyncio.FIRST_COMPLETED)
        up.cancel()
        if not self._server.started:
            await self._serving  # raises what stopped it
            raise RuntimeError("uvicorn did not start")
        return store

    def token(self, name: str, role: Role, *plants: str) -> str:
        made = self.call(
            create_token(self.store.engine, name, role, list(plants), self.store.clock())
        )
        self.tokens[name] = made
        return made

    async def _stop(self) -> None:
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            await self._serving
        await self.store.engine.dispose()

    def close(self) -> None:
        try:
            self.call(self._stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop.close()
