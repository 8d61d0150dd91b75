from __future__ import annotations

import asyncio
import logging

import pytest

from ingest.log_filters import RepeatFilter
from ingest.retry import Backoff, ErrorLog, StopRequestedError, retry_until_stopped


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


def test_error_log_logs_each_distinct_error_once(caplog: pytest.LogCaptureFixture) -> None:
    errors = ErrorLog(logging.getLogger("t"), "thing")
    with caplog.at_level(logging.INFO, logger="t"):
        for _ in range(5):
            errors.failed(ConnectionError("refused"))
        errors.failed(TimeoutError("slow"))
        errors.succeeded()
        errors.failed(ConnectionError("refused"))
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "thing failed, will retry: ConnectionError: refused",
        "thing failed, will retry: TimeoutError: slow",
        "thing recovered",
        "thing failed, will retry: ConnectionError: refused",
    ]


async def test_retry_until_success() -> None:
    attempts = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("no")
        return "ok"

    result = await retry_until_stopped(
        flaky,
        stop=asyncio.Event(),
        backoff=Backoff(0.001, 0.002),
        errors=ErrorLog(logging.getLogger("t"), "flaky"),
    )
    assert result == "ok"
    assert len(attempts) == 3


async def test_retry_gives_up_when_stopped() -> None:
    stop = asyncio.Event()

    async def failing() -> None:
        stop.set()
        raise ConnectionError("down")

    with pytest.raises(StopRequestedError):
        await retry_until_stopped(
            failing,
            stop=stop,
            backoff=Backoff(60, 60),  # stop must cut this wait short
            errors=ErrorLog(logging.getLogger("t"), "down"),
        )


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


def test_repeat_filter_lets_each_distinct_message_through_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("t.noisy")
    noisy = RepeatFilter(window_s=600)
    logger.addFilter(noisy)
    try:
        with caplog.at_level(logging.INFO, logger="t.noisy"):
            for _ in range(5):
                logger.error("Unable connect to %s", "127.0.0.1:1")
            logger.error("Unable connect to %s", "127.0.0.1:2")
    finally:
        logger.removeFilter(noisy)
    assert [r.getMessage() for r in caplog.records] == [
        "Unable connect to 127.0.0.1:1",
        "Unable connect to 127.0.0.1:2",
    ]


def test_repeat_filter_lets_a_message_through_again_after_its_window() -> None:
    again = RepeatFilter(window_s=0)
    record = logging.makeLogRecord({"name": "x", "levelno": logging.ERROR, "msg": "down"})
    assert again.filter(record)
    assert again.filter(record)
    once = RepeatFilter(window_s=600)
    assert once.filter(record)
    assert not once.filter(record)
