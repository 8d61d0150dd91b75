"""Creating the topics the service reads and writes when they do not exist yet."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from alerting.config import NewTopicSettings
from plantmesh.connections import KafkaConnection

log = logging.getLogger(__name__)


class TopicSetupError(Exception):
    """The broker refused to create a topic for a reason that retrying will not fix."""


async def ensure_topics(
    connection: KafkaConnection, names: Iterable[str], settings: NewTopicSettings
) -> list[str]:
    """Create the missing ones among `names`; return those this call created.

    Raises KafkaError when the broker is unreachable (worth retrying) and TopicSetupError when it
    refuses (not worth retrying). Losing a creation race to another service is fine."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=connection.bootstrap, client_id=f"{connection.client_id}-alerting-admin"
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [name for name in dict.fromkeys(names) if name not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(name, settings.partitions, settings.replication_factor) for name in missing]
        )
        created = []
        for topic, code, *rest in response.topic_errors:
            error = for_code(code) if code else None
            if error is None:
                created.append(topic)
            elif error is not TopicAlreadyExistsError:
                detail = rest[0] if rest and rest[0] else error.__name__
                raise TopicSetupError(f"cannot create topic {topic}: {detail}")
        if created:
            await _wait_for_leaders(admin, created)
            log.info("created topics %s", ", ".join(created))
        return created
    finally:
        await admin.close()


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, topics: list[str], timeout_s: float = 10.0
) -> None:
    """A new topic's partitions get leaders a moment after creation; a consumer that fetches
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


__all__ = ["KafkaError", "TopicSetupError", "ensure_topics"]
