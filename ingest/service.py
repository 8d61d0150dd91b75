"""Running one ingest role as a process: SIGTERM/SIGINT ask it to stop cleanly."""

from __future__ import annotations

import asyncio
import signal
from typing import Protocol


class Service(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


async def run_until_signalled(service: Service) -> None:
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, service.stop)
    try:
        await service.run()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def run_service(service: Service) -> int:
    asyncio.run(run_until_signalled(service))
    return 0
