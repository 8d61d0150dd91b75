"""The network-incident stage: alert events -> "the same issue type on the same machine class in
several plants" -> incident updates, as one process of two loops, each its own consumer group
so both scale out over partitions:

    alerts.events --re-key (group <group_id>-rekey)--> alerts.by_class
    alerts.by_class --correlate (group <group_id>)--> incidents.events
                                                       + checkpoints in incidents.state

rekey.py and correlate.py say how each loop keeps its delivery promise. The topics are created
at start; then both loops run until stop() (or until one fails, which stops the other)."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from alerting.incidents.correlate import Correlate
from alerting.incidents.plumbing import Retrier
from alerting.incidents.policy import CorrelationConfig, load_correlation
from alerting.incidents.rekey import Rekey
from alerting.incidents.stage_config import IncidentsConfig
from alerting.incidents.stats import StageStats, report_stats
from alerting.state_store import STATE_TOPIC_CONFIGS
from plantmesh.fleet import Fleet
from plantmesh.kafka.admin import TopicSetupError, ensure_topics
from plantmesh.resilience import StopRequestedError
from plantmesh.topics import Topics

log = logging.getLogger("alerting.incidents")


class IncidentStage:
    """In-process: `task = asyncio.create_task(stage.run())`, later `stage.stop()` and
    `await task`. `rekey.assigned` and `correlate.assigned` are set once each loop holds
    partitions."""

    def __init__(
        self,
        config: IncidentsConfig,
        policy: CorrelationConfig | None = None,
        fleet: Fleet | None = None,
    ) -> None:
        """`policy`, `fleet`: default the files the configuration names."""
        self.config = config
        self.policy = load_correlation(config.correlation) if policy is None else policy
        if fleet is None:
            fleet = Fleet([]) if config.registry is None else Fleet.load(config.registry)
        self.fleet = fleet
        self.topics = Topics(config.namespace)
        self.stats = StageStats()
        self._stopping = asyncio.Event()
        retry = Retrier(self._stopping, config.backoff, log)
        self._retry = retry
        self.rekey = Rekey(config, self.policy, self.stats, self._stopping, retry)
        self.correlate = Correlate(
            config, self.policy, self.fleet, self.stats, self._stopping, retry
        )

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Until stop(); raises TopicSetupError if the broker refuses to create a topic."""
        try:
            await self._create_topics()
        except StopRequestedError:
            return
        except TopicSetupError as exc:
            log.error("cannot set up topics: %s; stopping", exc)
            raise
        self._log_start()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.rekey.run(), name="incidents.rekey")
                tasks.create_task(self.correlate.run(), name="incidents.correlate")
                tasks.create_task(report_stats(self.stats, self._stopping), name="incidents.stats")
        except ExceptionGroup as group:
            # One loop failed and the group stopped the rest: hand the caller that one error.
            raise group.exceptions[0] from None
        finally:
            self._stopping.set()

    async def _create_topics(self) -> None:
        new = self.config.kafka_topics
        if not new.create:
            return
        t = self.topics
        topics = (t.alert_events, t.alerts_by_class, t.incident_events)
        for names, configs in ((topics, None), ((t.incidents_state,), STATE_TOPIC_CONFIGS)):
            create = partial(
                ensure_topics,
                self.config.kafka,
                names,
                new.partitions,
                new.replication_factor,
                configs=configs,
            )
            await self._retry("creating topics", create)

    def _log_start(self) -> None:
        t = self.topics
        never = sorted(k for k, v in self.policy.issue_types.items() if v is None)
        if self.policy.default is None:
            never.append("every issue type not listed")
        log.info(
            "incidents: %s -> %s (group %s) -> %s (group %s), state in %s; policy %s (%s), "
            "never correlated: %s; fleet of %d machine(s)%s",
            t.alert_events,
            t.alerts_by_class,
            self.config.rekey_group_id,
            t.incident_events,
            self.config.group_id,
            t.incidents_state,
            self.config.correlation,
            self.policy.version,
            ", ".join(never) or "none",
            len(self.fleet),
            f" from {self.config.registry}" if self.config.registry else " (no registry)",
        )
