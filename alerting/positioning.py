"""Where the alerting consumer reads a partition from once it owns it: a shard's own offsets
first (its checkpoint's, or how far it got), else where the group committed, else where
`start_from` says. Set explicitly every time, as a poll dropped across a rebalance may have
moved the fetch position past records that no shard has seen."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Literal

from aiokafka import AIOKafkaConsumer, TopicPartition

from alerting.topic_setup import Retry


async def position(
    consumer: AIOKafkaConsumer,
    partition: int,
    topics: Iterable[str],
    offsets: dict[str, int],
    start_from: Literal["earliest", "latest"],
    retry: Retry,
) -> None:
    for topic in topics:
        tp = TopicPartition(topic, partition)
        offset = offsets.get(topic)
        if offset is None:
            offset = await retry("reading a committed offset", partial(consumer.committed, tp))
        if offset is not None:
            consumer.seek(tp, offset)
        elif start_from == "latest":
            await retry("seeking to the end", partial(consumer.seek_to_end, tp))
        else:
            await retry("seeking to the beginning", partial(consumer.seek_to_beginning, tp))
