"""The alerting service's configuration file (see deploy/alerting/sample.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from alerting.catalogue import DEFAULT_CATALOGUE, Catalogue, load_catalogue
from alerting.rules import RuleConfig
from plantmesh.config import ConfigError, ConfigModel, load_config, resolve_relative
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
    catalogue: Path = DEFAULT_CATALOGUE
    """The issue-type catalogue every rule names its issue type from (relative to this file)."""
    lateness_s: Annotated[float, Field(ge=0)] = 2.0
    """How far behind the newest source time event time is taken to be complete: time-based
    conditions (on-delays, silence) are decided once the watermark passes them."""
    checkpoint_interval_s: Annotated[float, Field(gt=0)] = 5.0
    """How often each input partition's rule state is checkpointed with its offsets (also at
    every hand-over and clean stop): the most a restart after a crash replays."""
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
    """Load and validate `path`, with alert_log and catalogue made absolute relative to that
    file, and every rule's issue type checked against the catalogue."""
    config = load_config(AlertingConfig, path)
    config = config.model_copy(
        update={
            "alert_log": resolve_relative(path, config.alert_log),
            "catalogue": resolve_relative(path, config.catalogue),
        }
    )
    check_issue_types(config, load_catalogue(config.catalogue), path)
    return config


def check_issue_types(config: AlertingConfig, catalogue: Catalogue, path: Path | str) -> None:
    """Every rule names an issue type of the catalogue; raise ConfigError naming those that
    do not."""
    known = ", ".join(sorted(catalogue.issue_types))
    problems = [
        f"rules[{index}].issue_type: {rule.issue_type!r} is not in the catalogue "
        f"{config.catalogue} (known: {known})"
        for index, rule in enumerate(config.rules)
        if rule.issue_type not in catalogue.issue_types
    ]
    if problems:
        raise ConfigError(path, problems)
