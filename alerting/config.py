"""The alerting service's configuration file (see deploy/alerting/sample.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from alerting.rules import RuleConfig
from plantmesh.config import ConfigModel, load_config, resolve_relative
from plantmesh.connections import BackoffSettings, KafkaConnection, KafkaTopicSettings
from plantmesh.topics import Namespace


class AlertingConfig(ConfigModel):
    namespace: Namespace = ""
    """Prefix of every topic name (Topics(namespace)), for isolated deployments and tests."""
    kafka: KafkaConnection = Field(default_factory=KafkaConnection)
    group_id: Annotated[str, Field(min_length=1)] = "plantmesh-alerting"
    start_from: Literal["earliest", "latest"] = "earliest"
    """Where a consumer group with no committed offsets starts reading."""
    kafka_topics: KafkaTopicSettings = Field(default_factory=KafkaTopicSettings)
    backoff: BackoffSettings = Field(default_factory=BackoffSettings)
    alert_log: Path = Path("alerts.jsonl")
    """JSON lines of AlertEvent; relative paths are relative to the configuration file."""
    rules: list[RuleConfig]

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[RuleConfig]) -> list[RuleConfig]:
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice (names must be unique)")
            seen.add(rule.name)
        return rules


def load_alerting_config(path: Path | str) -> AlertingConfig:
    """Load and validate `path`, with alert_log made absolute relative to that file."""
    config = load_config(AlertingConfig, path)
    return config.model_copy(update={"alert_log": resolve_relative(path, config.alert_log)})
