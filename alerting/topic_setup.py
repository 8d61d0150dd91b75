"""The alerting service's topics before it consumes: created when the configuration says so, and
its inputs checked to be co-partitioned (one process must own partition p of every input)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Protocol, TypeVar

from alerting.config import AlertingConfig
from alerting.inputs import input_topics
from alerting.state_store import STATE_TOPIC_CONFIGS, StateStore
from plantmesh.kafka.admin import ensure_topics
from plantmesh.topics import Topics

log = logging.getLogger(__name__)

T = TypeVar("T")


class Retry(Protocol):
    """The service's: `attempt` until it works, or StopRequestedError."""

    async def __call__(self, what: str, attempt: Callable[[], Awaitable[T]], /) -> T: ...


async def create_topics(config: AlertingConfig, topics: Topics, retry: Retry) -> None:
    new = config.kafka_topics
    if not new.create:
        return
    names = (*input_topics(topics), topics.alert_events, topics.alerting_commands)
    state = (topics.alerting_state,)
    for group, configs in ((names, None), (state, STATE_TOPIC_CONFIGS)):
        create = partial(
            ensure_topics,
            config.kafka,
            group,
            new.partitions,
            new.replication_factor,
            configs=configs,
        )
        await retry("creating topics", create)


async def input_partitions(topics: Topics, store: StateStore, retry: Retry) -> int:
    """The partition count of telemetry.normalized; warns when the inputs' counts differ."""
    counts = {
        topic: await retry(
            f"reading the partitions of {topic}", partial(store.partition_count, topic)
        )
        for topic in input_topics(topics)
    }
    if len(set(counts.values())) != 1:
        found = ", ".join(f"{t}: {n}" for t, n in counts.items())
        log.warning(
            "the alerting inputs have different partition counts (%s): one process is "
            "right, but with several, a gateway's deaths and gaps can reach a process that "
            "does not own its batches (skipped there, counted as elsewhere). Give them one "
            "partition count.",
            found,
        )
    return counts[topics.telemetry_normalized]
