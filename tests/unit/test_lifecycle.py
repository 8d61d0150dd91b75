from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal

import pytest

from plantmesh.lifecycle import GC_THRESHOLDS, STOP_SIGNALS, run_service, run_until_signalled

WAIT_S = 5.0


class FakeService:
    """Signals its own process from inside `run()`, the way systemd or a terminal would."""

    def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM,)) -> None:
        self.signals = signals
        self.stops = 0
        self.finished = False
        self._stopped = asyncio.Event()

    def stop(self) -> None:
        self.stops += 1
        self._stopped.set()

    async def run(self) -> None:
        for sig in self.signals:  # the second one arrives while "shutting down"
            self._stopped.clear()
            os.kill(os.getpid(), sig)
            await asyncio.wait_for(self._stopped.wait(), WAIT_S)
        self.finished = True


class SetupError(Exception):
    """Stands for an error that retrying cannot fix."""


class FailingService:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def stop(self) -> None:
        raise AssertionError("not signalled, so never asked to stop")

    async def run(self) -> None:
        raise self.error


def assert_handlers_removed() -> None:
    loop = asyncio.get_running_loop()
    # False: no handler of the loop left for that signal.
    assert [loop.remove_signal_handler(sig) for sig in STOP_SIGNALS] == [False, False]


async def test_sigterm_stops_the_service_and_the_handlers_are_removed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = FakeService()
    with caplog.at_level(logging.INFO, logger="plantmesh.lifecycle"):
        assert await run_until_signalled(service, "fake") == 0
    assert service.finished
    assert service.stops == 1
    assert caplog.messages == ["fake: SIGTERM received, shutting down"]
    assert_handlers_removed()


async def test_a_second_signal_during_shutdown_does_not_cut_it_short(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = FakeService((signal.SIGTERM, signal.SIGINT))
    with caplog.at_level(logging.INFO, logger="plantmesh.lifecycle"):
        assert await run_until_signalled(service, "fake") == 0
    assert service.finished  # no KeyboardInterrupt: run() got to its end
    assert service.stops == 2
    assert caplog.messages[-1] == "fake: SIGINT received again, still shutting down"
    assert_handlers_removed()


async def test_a_fatal_error_is_exit_code_1_with_the_reason_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    service = FailingService(SetupError("topic refused"))
    assert await run_until_signalled(service, "fake", fatal=(SetupError,)) == 1
    assert capsys.readouterr().err == "fake: topic refused\n"
    assert_handlers_removed()


async def test_other_errors_propagate_and_the_handlers_are_removed() -> None:
    with pytest.raises(ValueError, match="bug"):
        await run_until_signalled(FailingService(ValueError("bug")), "fake", fatal=(SetupError,))
    assert_handlers_removed()


def test_run_service_builds_the_service_inside_its_own_loop() -> None:
    built: list[asyncio.AbstractEventLoop] = []

    def make() -> FakeService:
        built.append(asyncio.get_running_loop())
        return FakeService()

    assert run_service(make, "fake") == 0
    assert len(built) == 1
    assert built[0].is_closed()  # asyncio.run's loop, closed once the service returned


def test_run_service_runs_with_the_services_garbage_collector_thresholds() -> None:
    seen: list[tuple[int, int, int]] = []
    default = gc.get_threshold()

    def make() -> FakeService:
        seen.append(gc.get_threshold())
        return FakeService()

    try:
        gc.set_threshold(700, 10, 10)
        assert run_service(make, "fake") == 0
    finally:
        gc.set_threshold(*default)
    assert seen == [GC_THRESHOLDS]
