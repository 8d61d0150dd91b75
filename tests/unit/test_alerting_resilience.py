from __future__ import annotations

import asyncio
import logging

import pytest

from alerting.resilience import Backoff, LogOnce, RepeatFilter


def test_backoff_is_capped_and_jittered() -> None:
    backoff = Backoff(initial_s=1.0, cap_s=8.0)
    delays = [backoff.next_delay() for _ in range(10)]
    assert all(0.5 <= d <= 8.0 for d in delays)
    assert delays[0] <= 1.0
    assert delays[-1] >= 4.0  # reached the cap's range
    assert len(set(delays)) > 1
    backoff.reset()
    assert backoff.next_delay() <= 1.0


async def test_backoff_wait_returns_early_when_stopping() -> None:
    stopping = asyncio.Event()
    stopping.set()
    assert await asyncio.wait_for(Backoff(initial_s=60).wait(stopping), 5) is True
    assert await Backoff(initial_s=0.001).wait(asyncio.Event()) is False


def test_log_once_logs_each_problem_once_until_recovered(caplog: pytest.LogCaptureFixture) -> None:
    once = LogOnce(logging.getLogger("t.once"))
    with caplog.at_level(logging.INFO, logger="t.once"):
        for _ in range(5):
            once.warning("kafka:down", "kafka down")
        once.warning("file:full", "disk full")
        once.recovered("kafka:", "kafka back")
        once.recovered("kafka:", "kafka back")  # nothing to recover: silent
        once.warning("kafka:down", "kafka down")
    assert [r.getMessage() for r in caplog.records] == [
        "kafka down",
        "disk full",
        "kafka back",
        "kafka down",
    ]


def record(name: str, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, None, None)


def test_repeat_filter_drops_repeats_of_library_messages_only() -> None:
    repeats = RepeatFilter(window_s=300)
    assert repeats.filter(record("aiokafka", "Unable connect"))
    assert not repeats.filter(record("aiokafka", "Unable connect"))
    assert repeats.filter(record("aiokafka", "another message"))
    assert repeats.filter(record("aiokafka.consumer.fetcher", "Unable connect"))
    assert repeats.filter(record("alerting.service", "same"))
    assert repeats.filter(record("alerting.service", "same"))


def test_repeat_filter_lets_a_message_through_again_after_its_window() -> None:
    repeats = RepeatFilter(window_s=0)
    assert repeats.filter(record("aiokafka", "x"))
    assert repeats.filter(record("aiokafka", "x"))
