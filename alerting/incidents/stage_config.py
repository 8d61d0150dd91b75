"""The network-incident stage's configuration file (see deploy/alerting/incidents.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from alerting.catalogue import DEFAULT_CATALOGUE
from plantmesh.config import ConfigModel, load_config, resolve_relative
from plantmesh.connections import BackoffSettings, KafkaConnection, KafkaTopicSettings
from plantmesh.topics import Namespace


class IncidentsConfig(ConfigModel):
    namespace: Namespace = ""
    """Prefix of every topic name (Topics(namespace)), for isolated deployments and tests."""
    kafka: KafkaConnection = Field(default_factory=KafkaConnection)
    group_id: Annotated[str, Field(min_length=1)] = "plantmesh-incidents"
    """The correlating consumers' group; the re-keying consumers use `<group_id>-rekey`."""
    start_from: Literal["earliest", "latest"] = "earliest"
    """Where the re-keying group starts on alerts.events when it has no committed offsets.
    A partition of alerts.by_class without a checkpoint is read from its start (earliest), or
    from the group's committed offset or the end (latest: a fresh deployment that must not
    take in what other groups left on the shared topic)."""
    kafka_topics: KafkaTopicSettings = Field(default_factory=KafkaTopicSettings)
    backoff: BackoffSettings = Field(default_factory=BackoffSettings)
    correlation: Path = Path("correlation.yaml")
    """The correlation policies (alerting/incidents/policy.py); relative to this file."""
    catalogue: Path = DEFAULT_CATALOGUE
    """The issue-type catalogue the correlation policies are checked against."""
    registry: Path | None = None
    """The asset registry, for the machines' attributes in each incident's explanation
    (relative to this file). Without it the explanation compares nothing."""
    tick_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    """How often incidents are checked for having been quiet for their hold time."""
    checkpoint_interval_s: Annotated[float, Field(gt=0)] = 5.0
    """How often each input partition's correlator is checkpointed with its offset (also at
    every hand-over and clean stop): the most a restart after a crash replays."""

    @property
    def rekey_group_id(self) -> str:
        return f"{self.group_id}-rekey"


def load_incidents_config(path: Path | str) -> IncidentsConfig:
    """Load and validate `path`, with correlation and registry made absolute relative to it."""
    config = load_config(IncidentsConfig, path)
    registry = None if config.registry is None else resolve_relative(path, config.registry)
    return config.model_copy(
        update={
            "correlation": resolve_relative(path, config.correlation),
            "catalogue": resolve_relative(path, config.catalogue),
            "registry": registry,
        }
    )
