"""Fixtures the alarm tests share (a pytest plugin, loaded by conftest.py): an empty migrated
alarm database per test (SQLite and PostgreSQL), a hand-moved clock, and the HTTP and SMTP
receivers that count notifications."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.alarms import Clock, migrated
from tests.support.receivers import HttpReceiver, SmtpReceiver, http_receiver, smtp_receiver


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The alarm database of this test, migrated to the code's revision."""
    async with migrated(database_url) as made:
        yield made


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        yield receiver


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with smtp_receiver() as receiver:
        yield receiver
