"""The alerting service's slow-poll report: where the time of a poll that delays alerts went."""

from __future__ import annotations

import logging

import pytest

from alerting.stats import SLOW_POLL_S, ServiceStats


def test_a_slow_poll_is_logged_with_its_phases_then_only_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stats = ServiceStats()
    with caplog.at_level(logging.WARNING, logger="alerting.service"):
        stats.poll_took({"evaluate": 0.01, "advance": 0.02})
        stats.poll_took({"lock": 0.4, "evaluate": 0.05})
        stats.poll_took({"evaluate": SLOW_POLL_S})
    assert stats.slow_polls == 2
    (logged,) = [r.getMessage() for r in caplog.records]
    assert logged.startswith("slow poll: 450 ms (lock 400, evaluate 50 ms)")
