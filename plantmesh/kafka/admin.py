"""Creating the Kafka topics a service reads and writes when they do not exist yet: plain topics
and compacted state topics alike, ready (partition leaders elected) when the call returns."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from plantmesh.connections import KafkaConnection
from plantmesh.kafka.security import kafka_client_options

log = logging.getLogger(__name__)

LEADER_WAIT_S = 10.0


class TopicSetupError(Exception):
    """The broker refused to create a topic for a reason that retrying will not fix."""


COMPACTED = {"cleanup.policy": "compact"}
"""Topic configs of a state topic: Kafka keeps the latest value per key forever."""


async def ensure_topics(
    connection: KafkaConnection,
    names: Iterable[str],
    partitions: int,
    replication_factor: int,
    *,
    configs: Mapping[str, str] | None = None,
) -> list[str]:
    """Create the missing ones among `names` (with topic `configs`, e.g. COMPACTED); return
    those this call created, once their partitions have leaders.

    Raises aiokafka's KafkaError when the broker is unreachable (worth retrying) and
    TopicSetupError when it refuses (not worth retrying). Losing a creation race to another
    service is fine: that topic exists, which is all the caller needs."""
    admin = AIOKafkaAdminClient(
        **kafka_client_options(connection), client_id=f"{connection.client_id}-admin"
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [name for name in dict.fromkeys(names) if name not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [
                NewTopic(name, partitions, replication_factor, topic_configs=dict(configs or {}))
                for name in missing
            ]
        )
        created: list[str] = []
        refused: list[str] = []
        for topic, code, *rest in response.topic_errors:
            error = for_code(code) if code else None
            if error is None:
                created.append(topic)
            elif error is not TopicAlreadyExistsError:
                refused.append(f"{topic}: {rest[0] if rest and rest[0] else error.__name__}")
        if created:
            await _wait_for_leaders(admin, created)
            log.info(
                "created Kafka topics %s",
                ", ".join(created),
                extra={"partitions": partitions, "replication_factor": replication_factor},
            )
        if refused:
            raise TopicSetupError(f"cannot create topic {'; '.join(refused)}")
        return created
    finally:
        await admin.close()


async def ensure_compacted_topic(
    connection: KafkaConnection, name: str, partitions: int, replication_factor: int
) -> list[str]:
    """`ensure_topics` for one state topic (`cleanup.policy=compact`)."""
    return await ensure_topics(
        connection, [name], partitions, replication_factor, configs=COMPACTED
    )


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, topics: list[str], timeout_s: float = LEADER_WAIT_S
) -> None:
    """A new topic's partitions get leaders a moment after creation; a client that uses it
    before that logs NotLeaderForPartition errors. Best effort: give up quietly after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = await admin.describe_topics(topics)
        if len(described) == len(topics) and all(
            t["error_code"] == 0
            and t["partitions"]
            and all(p["error_code"] == 0 and p["leader"] >= 0 for p in t["partitions"])
            for t in described
        ):
            return
        await asyncio.sleep(0.1)
