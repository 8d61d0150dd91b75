"""RenewingProducer with fake aiokafka producers: which errors start a new producer, and what
senders see while it starts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, OutOfOrderSequenceNumber

from plantmesh.kafka.renewing_producer import RenewingProducer
from tests.support.waiting import async_wait_for


class _Fake:
    def __init__(self, number: int, start_fails: bool = False) -> None:
        self.number = number
        self.start_fails = start_fails
        self.started = False
        self.stopped = False
        self.futures: list[asyncio.Future[Any]] = []

    async def start(self) -> None:
        if self.start_fails:
            raise KafkaConnectionError("broker down")
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, **_: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


class _Factory:
    def __init__(self) -> None:
        self.made: list[_Fake] = []
        self.fail_starts = 0

    def __call__(self) -> Any:
        fake = _Fake(len(self.made), start_fails=self.fail_starts > 0)
        self.fail_starts = max(0, self.fail_starts - 1)
        self.made.append(fake)
        return fake


async def _true(value: bool) -> bool:
    return value


async def test_an_out_of_order_sequence_starts_a_new_producer() -> None:
    factory = _Factory()
    producer = RenewingProducer(factory)
    await producer.start()
    first = await producer.send("t", value=b"1")
    first.set_exception(KafkaConnectionError("retriable: no renewal"))
    await asyncio.gather(first, return_exceptions=True)
    assert producer.renewals == 0
    broken = await producer.send("t", value=b"2")
    broken.set_exception(OutOfOrderSequenceNumber())
    await asyncio.gather(broken, return_exceptions=True)
    await producer.send("t", value=b"3")  # waits for the new producer
    assert producer.renewals == 1
    old, new = factory.made
    assert len(new.futures) == 1
    await async_wait_for(lambda: _true(old.stopped), 5, "the old producer stopped")
    await producer.stop()
    assert new.stopped


async def test_senders_fail_like_an_unreachable_kafka_while_the_new_one_cannot_start() -> None:
    factory = _Factory()
    producer = RenewingProducer(factory, renew_wait_s=0.2)
    await producer.start()
    factory.fail_starts = 1000  # Kafka is gone
    broken = await producer.send("t", value=b"1")
    broken.set_exception(OutOfOrderSequenceNumber())
    await asyncio.gather(broken, return_exceptions=True)
    with pytest.raises(KafkaTimeoutError):
        await producer.send("t", value=b"2")
    factory.fail_starts = 0  # back

    async def renewed() -> bool:
        return producer.renewals == 1

    await async_wait_for(renewed, 10, "a new producer once Kafka is back")
    await producer.send("t", value=b"3")
    assert len(factory.made[-1].futures) == 1
    await producer.stop()
