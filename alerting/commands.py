"""Commands to running alerting processes: freeze, relearn or reset the SPC baseline of a series.

    plantmesh alerting baseline relearn --config alerting.yaml --rule pressure-shift \\
        --series plant-a/stamping/line1/pump-01/pressure

A command is a JSON record on the topic alerting.commands. Every alerting process reads all of
it from where it stood when the process started (not a consumer group: the process that owns the
series is not known to the sender) and applies a command to each of its engines that knows the
rule and the series; the change is in the next checkpoint. Commands act at a moment of wall
time, not of event time: `explain` replays data, not commands, so an alert decided on a
baseline a command changed is replayed on the baseline the data alone gives."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Literal

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from pydantic import Field

from alerting.engine import Engine
from plantmesh.connections import KafkaConnection
from plantmesh.contracts import DecodeError, Name, decode, encode
from plantmesh.contracts.common import AwareDatetime, WireModel
from plantmesh.kafka.clients import make_consumer, make_producer, start_client

log = logging.getLogger(__name__)

Action = Literal["freeze", "relearn", "reset"]


class BaselineCommand(WireModel):
    action: Action
    rule: Name
    series: str = Field(min_length=1)
    """`plant/area/line/machine/signal`."""
    issued_at: AwareDatetime
    by: str = ""


def apply(engines: Iterable[Engine], command: BaselineCommand) -> int:
    """Apply to every engine whose rule of that name knows the series; returns how many."""
    applied = 0
    for engine in engines:
        for rule in engine.rules:
            if rule.name != command.rule:
                continue
            knows = getattr(rule, "series_state", None)
            act = getattr(rule, command.action, None)
            if knows is None or act is None or knows(command.series) is None:
                continue
            act(command.series)
            applied += 1
    return applied


async def send(connection: KafkaConnection, topic: str, command: BaselineCommand) -> None:
    producer = make_producer(connection, "alerting-command")
    await start_client(producer)
    try:
        await (await producer.send(topic, encode(command), key=command.series.encode()))
    finally:
        await producer.stop()


async def follow(
    connection: KafkaConnection,
    topic: str,
    partitions: int,
    handle: Callable[[BaselineCommand], Awaitable[None]],
    stopping: asyncio.Event,
    ready: asyncio.Event | None = None,
) -> None:
    """Read `topic` (`partitions` of it) from its end as of now until `stopping`, handing each
    command over."""
    reader = make_consumer(connection, "alerting-commands", group_id=None)
    await start_client(reader)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        reader.assign(tps)
        await reader.seek_to_end(*tps)
        for tp in tps:
            await reader.position(tp)  # fix the start now, before any command is sent
        if ready is not None:
            ready.set()
        while not stopping.is_set():
            try:
                batches = await reader.getmany(timeout_ms=200)
            except KafkaError as exc:
                log.warning("reading %s failed: %s", topic, exc)
                continue
            for records in batches.values():
                for record in records:
                    try:
                        command = decode(BaselineCommand, record.value or b"")
                    except DecodeError as exc:
                        log.warning("ignoring a command that is not one: %s", exc)
                        continue
                    await handle(command)
    finally:
        await reader.stop()
