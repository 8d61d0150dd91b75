"""Shared fixtures. Real servers come from tests/support/servers.py; see that module for where
they come from (environment variables, testcontainers, or the project's local stack). Helpers
shared by test modules live in tests/support/."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer

from tests.support.kafka import kafka_options
from tests.support.namespaces import NAMESPACES

pytest_plugins = ["tests.support.servers", "tests.support.alarm_fixtures"]


@pytest.fixture
def namespace() -> str:
    """A topic namespace of this test's own, so tests sharing one broker never see each other.
    Its Kafka topics are deleted at the end of the session (tests/support/servers.py)."""
    name = f"t{uuid.uuid4().hex[:10]}"
    NAMESPACES.add(name)
    return name


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    """A plain acks=all producer on the test Kafka, for feeding a service's input topics."""
    producer = AIOKafkaProducer(**kafka_options(kafka_bootstrap), acks="all")
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
async def _no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running behind it (FastStream/pymodbus style)."""
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)  # one loop turn, so tasks cancelled during teardown can finish
    leftover = [
        t
        for t in asyncio.all_tasks()
        if t not in before and not t.done() and t is not asyncio.current_task()
    ]
    for task in leftover:
        task.cancel()
    assert not leftover, f"test leaked asyncio tasks: {sorted(t.get_name() for t in leftover)}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # First in the list: set up before and torn down after every other fixture of the test.
    for item in items:
        if item.get_closest_marker("asyncio") and isinstance(item, pytest.Function):
            item.fixturenames.insert(0, "_no_leaked_tasks")
