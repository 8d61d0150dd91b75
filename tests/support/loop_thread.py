"""An event loop in a thread of its own, for a server the test talks to over the network: the
test's loop then holds only the client's tasks (so a leaked one is seen at once), and a server
that blocks cannot stall the client under test."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class LoopThread:
    """`await run(coroutine)` runs it in the thread's loop; `await close()` ends whatever is left
    there and joins the thread."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    async def run(self, coroutine: Coroutine[Any, Any, R]) -> R:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return await asyncio.wrap_future(future)

    async def close(self) -> None:
        async def cancel_the_rest() -> None:
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        await self.run(cancel_the_rest())
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, 30)
        self._loop.close()


class Served(Generic[T]):
    """A server (an async context manager made by `serve(port)`) on a fixed port in a LoopThread,
    which the test can stop and start again: `handle` is what the context manager yields."""

    def __init__(
        self,
        serve: Callable[[int], AbstractAsyncContextManager[T]],
        port: int,
        thread: LoopThread,
    ) -> None:
        self.port = port
        self._serve = serve
        self._thread = thread
        self._running: AbstractAsyncContextManager[T] | None = None
        self._handle: T | None = None

    @property
    def handle(self) -> T:
        assert self._handle is not None, "the server is not running"
        return self._handle

    @property
    def running(self) -> bool:
        return self._running is not None

    async def start(self) -> T:
        assert self._running is None, "the server is running already"
        serving = self._serve(self.port)
        self._handle = await self._thread.run(serving.__aenter__())
        self._running = serving
        return self._handle

    async def stop(self) -> None:
        serving, self._running, self._handle = self._running, None, None
        if serving is not None:
            await self._thread.run(serving.__aexit__(None, None, None))

    async def run(self, coroutine: Coroutine[Any, Any, R]) -> R:
        """Run a coroutine that touches the server in the server's loop."""
        return await self._thread.run(coroutine)


@asynccontextmanager
async def served_in_thread(
    serve: Callable[[int], AbstractAsyncContextManager[T]], port: int, name: str
) -> AsyncIterator[Served[T]]:
    """The server started in a thread of its own; stopped (if still running) on exit."""
    thread = LoopThread(name)
    server = Served(serve, port, thread)
    try:
        await server.start()
        yield server
    finally:
        try:
            await server.stop()
        finally:
            await thread.close()
