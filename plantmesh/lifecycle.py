"""Running a service as a process: SIGTERM or SIGINT asks it to stop, and it shuts down cleanly.

Every service (edge agent, ingest bridge and writer, alerting) runs this way, so all of them
behave alike under systemd, in a container and in a terminal. Standard library only: the edge
agent imports it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Protocol

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
GC_THRESHOLDS = (10_000, 10, 10)


def tune_gc() -> None:
    """A young collection every 10,000 net allocations, not every 700 (CPython's default). A
    service keeps a large long-lived state (the alerting rules') and allocates a burst per poll;
    with the default, the objects of the poll in flight were promoted, and the full collections
    that followed walked the whole state again and again: 22 % of the alerting engine's time in
    bench_alerting, 2 % with this. Only cyclic garbage waits longer (refcounting frees the rest
    at once), and there is little of it."""
    gc.set_threshold(*GC_THRESHOLDS)


class Service(Protocol):
    async def run(self) -> None:
        """Run until `stop()` was called and the shutdown is complete."""

    def stop(self) -> None:
        """Ask `run()` to finish; safe to call from a signal handler, more than once."""


@contextlib.contextmanager
def stop_on_signals(
    stop: Callable[[], None], name: str, signals: tuple[signal.Signals, ...] = STOP_SIGNALS
) -> Iterator[None]:
    """Inside the block (in a running event loop) each of `signals` calls `stop()` instead of
    ending the process; the default handlers are back once the block is left.

    A second signal during the shutdown calls `stop()` again, which changes nothing: the
    shutdown is not cut short, so what a service still has to finish (acknowledgements, offset
    commits, a death message) is not lost. The service's own timeouts bound how long it takes."""
    loop = asyncio.get_running_loop()
    stopping = False

    def on_signal(sig: signal.Signals) -> None:
        nonlocal stopping
        if stopping:
            log.info("%s: %s received again, still shutting down", name, sig.name)
        else:
            log.info("%s: %s received, shutting down", name, sig.name)
        stopping = True
        stop()

    try:
        for sig in signals:
            loop.add_signal_handler(sig, on_signal, sig)
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


async def run_until_signalled(
    service: Service, name: str, *, fatal: tuple[type[Exception], ...] = ()
) -> int:
    """Run `service` until SIGTERM/SIGINT made it stop; returns the process exit code.

    0 once `run()` returned. 1 if it raised one of `fatal`, errors that retrying cannot fix
    (e.g. a broker that refuses to create a topic), shown on stderr as `name: error`. Any other
    exception propagates."""
    with stop_on_signals(service.stop, name):
        try:
            await service.run()
        except fatal as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 1
    return 0


def run_service(
    make_service: Callable[[], Service], name: str, *, fatal: tuple[type[Exception], ...] = ()
) -> int:
    """The body of a service's `run` command: a new event loop, the service built inside it
    (so everything it creates belongs to that loop), `run_until_signalled`, its exit code."""

    async def main() -> int:
        return await run_until_signalled(make_service(), name, fatal=fatal)

    tune_gc()
    return asyncio.run(main())
