from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
from typing import Any

import pytest

from plantmesh.resilience import (
    Backoff,
    ErrorLog,
    StopRequestedError,
    describe,
    raise_if_cancelled,
    retry_until_stopped,
    sleep_unless_stopped,
)


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(0.1, 1.0, rng=lambda: 1.0)
    assert [round(backoff.next_delay(), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    backoff.reset()
    assert backoff.next_delay() == pytest.approx(0.1)


def test_backoff_jitter_stays_in_the_upper_half() -> None:
    low = Backoff(1.0, 8.0, rng=lambda: 0.0)
    assert [low.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    many = Backoff(1.0, 1.0)
    delays = {many.next_delay() for _ in range(50)}
    assert all(0.5 <= d <= 1.0 for d in delays)
    assert len(delays) > 1


def test_backoff_is_capped_and_jittered_with_its_defaults() -> None:
    backoff = Backoff(initial_s=1.0, max_s=8.0)
    delays = [backoff.next_delay() for _ in range(10)]
    assert all(0.5 <= d <= 8.0 for d in delays)
    assert delays[0] <= 1.0
    assert delays[-1] >= 4.0  # reached the cap's range
    assert len(set(delays)) > 1
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_backoff_factor_and_jitter_are_configurable() -> None:
    no_jitter = Backoff(1.0, 100.0, factor=3.0, jitter=0.0, rng=lambda: 0.0)
    assert [no_jitter.next_delay() for _ in range(5)] == [1.0, 3.0, 9.0, 27.0, 81.0]
    full = Backoff(2.0, 2.0, jitter=1.0, rng=lambda: 0.0)
    assert full.next_delay() == 0.0


def test_backoff_stays_finite_after_very_many_attempts() -> None:
    backoff = Backoff(1.0, 30.0, factor=1000.0, rng=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(500)][-1] == 30.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_s": 0.0},
        {"initial_s": 2.0, "max_s": 1.0},
        {"factor": 0.5},
        {"jitter": 1.5},
    ],
)
def test_backoff_rejects_settings_that_make_no_sense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"must be|need"):
        Backoff(**kwargs)


async def test_backoff_wait_returns_early_when_stopping() -> None:
    stopping = asyncio.Event()
    stopping.set()
    assert await asyncio.wait_for(Backoff(60, 60).wait(stopping), 5) is True
    assert await Backoff(initial_s=0.001).wait(asyncio.Event()) is False


async def test_sleep_unless_stopped_wakes_up_when_stop_is_set() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, stop.set)
    assert await asyncio.wait_for(sleep_unless_stopped(stop, 60), 5) is True
    assert await sleep_unless_stopped(asyncio.Event(), 0.001) is False


def test_describe_names_the_error_type_once_and_stays_short() -> None:
    assert describe(ConnectionError("refused")) == "ConnectionError: refused"
    assert describe(TimeoutError()) == "TimeoutError()"
    assert len(describe(ValueError("x" * 1000))) == 300


def test_error_log_logs_each_distinct_error_once(caplog: pytest.LogCaptureFixture) -> None:
    errors = ErrorLog(logging.getLogger("t"), "thing")
    with caplog.at_level(logging.INFO, logger="t"):
        for _ in range(5):
            errors.failed(ConnectionError("refused"))
        errors.failed(TimeoutError("slow"))
        assert errors.failing
        errors.succeeded()
        errors.succeeded()  # nothing to recover from: silent
        assert not errors.failing
        errors.failed(ConnectionError("refused"))
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "thing failed, will retry: ConnectionError: refused",
        "thing failed, will retry: TimeoutError: slow",
        "thing recovered",
        "thing failed, will retry: ConnectionError: refused",
    ]


def test_error_log_once_logs_each_key_once_until_recovered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    once = ErrorLog(logging.getLogger("t.once"), "kafka")
    with caplog.at_level(logging.INFO, logger="t.once"):
        assert once.once("down", "kafka down")
        for _ in range(4):
            assert not once.once("down", "kafka down")
        assert once.once("full", "disk %s", "full", level=logging.ERROR)
        once.succeeded()
        assert once.once("down", "kafka down")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "kafka down"),
        ("ERROR", "disk full"),
        ("INFO", "kafka recovered"),
        ("WARNING", "kafka down"),
    ]


def test_error_log_remembers_a_bounded_number_of_errors(caplog: pytest.LogCaptureFixture) -> None:
    errors = ErrorLog(logging.getLogger("t.many"), "poll", max_distinct=3)
    with caplog.at_level(logging.INFO, logger="t.many"):
        for port in range(100):
            errors.failed(ConnectionError(f"refused from port {port}"))
        errors.succeeded()
        errors.failed(ConnectionError("refused from port 0"))
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 6
    assert (
        messages[3] == "poll: more than 3 distinct errors; new ones are not logged until it works"
    )
    assert messages[4:] == [
        "poll recovered",
        "poll failed, will retry: ConnectionError: refused from port 0",
    ]


async def test_retry_until_success() -> None:
    attempts = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("no")
        return "ok"

    retries = []
    errors = ErrorLog(logging.getLogger("t"), "flaky")
    result = await retry_until_stopped(
        flaky,
        stop=asyncio.Event(),
        backoff=Backoff(0.001, 0.002),
        errors=errors,
        on_retry=lambda: retries.append(1),
    )
    assert result == "ok"
    assert len(attempts) == 3
    assert len(retries) == 2
    assert not errors.failing


async def test_retry_gives_up_when_stopped() -> None:
    stop = asyncio.Event()

    async def failing() -> None:
        stop.set()
        raise ConnectionError("down")

    with pytest.raises(StopRequestedError, match="down"):
        await retry_until_stopped(
            failing,
            stop=stop,
            backoff=Backoff(60, 60),  # stop must cut this wait short
            errors=ErrorLog(logging.getLogger("t"), "down"),
        )


async def test_retry_makes_no_attempt_once_stopped() -> None:
    stop = asyncio.Event()
    stop.set()
    attempts = []

    async def works() -> None:
        attempts.append(1)

    with pytest.raises(StopRequestedError):
        await retry_until_stopped(
            works, stop=stop, backoff=Backoff(), errors=ErrorLog(logging.getLogger("t"), "x")
        )
    assert attempts == []


async def test_other_errors_are_not_retried() -> None:
    async def broken() -> None:
        raise ValueError("bug")

    with pytest.raises(ValueError, match="bug"):
        await retry_until_stopped(
            broken,
            stop=asyncio.Event(),
            backoff=Backoff(0.001, 0.001),
            errors=ErrorLog(logging.getLogger("t"), "x"),
            retry_on=(ConnectionError,),
        )


def test_the_import_time_path_of_plantmesh_does_not_import_aiokafka() -> None:
    """The edge install has no aiokafka: only plantmesh.kafka.admin may import it."""
    modules = "plantmesh, plantmesh.cli, plantmesh.config, plantmesh.contracts, plantmesh.topics"
    modules += ", plantmesh.connections, plantmesh.logs, plantmesh.resilience"
    code = f"import sys, {modules}; print(sorted(m for m in sys.modules if 'kafka' in m))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


async def test_a_swallowed_cancellation_is_raised_at_the_next_check() -> None:
    rounds = 0
    started = asyncio.Event()

    async def polling_loop() -> None:
        nonlocal rounds
        while True:
            raise_if_cancelled()
            rounds += 1
            started.set()
            # What asyncio.wait_for on 3.11 can do to a cancellation:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()

    task = asyncio.create_task(polling_loop())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert rounds == 1  # it ended at the check instead of polling again


async def test_raise_if_cancelled_is_quiet_when_nothing_was_cancelled() -> None:
    raise_if_cancelled()  # must not raise
    assert asyncio.current_task() is not None
