"""The alarm service's configuration file (see deploy/alerting/alarms.yaml)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from alerting.catalogue import DEFAULT_CATALOGUE
from alerting.lifecycle.machine import Policy
from alerting.scorecards.settings import ScorecardSettings
from plantmesh.config import ConfigModel, load_config, resolve_relative
from plantmesh.connections import (
    BackoffSettings,
    DatabaseConnection,
    InfluxConnection,
    KafkaConnection,
    KafkaTopicSettings,
    MqttConnection,
)
from plantmesh.topics import Namespace


class LifecycleSettings(ConfigModel):
    max_shelve_s: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] = 8 * 3600
    """The longest timed shelving anyone may ask for (ISA-18.2: shelving is temporary)."""
    re_alarm_after_s: Annotated[float, Field(gt=0)] | None = None
    """An acknowledged alarm still active this long is unacknowledged again (None: never)."""

    def policy(self) -> Policy:
        again = self.re_alarm_after_s
        return Policy(
            max_shelve=timedelta(seconds=self.max_shelve_s),
            re_alarm_after=None if again is None else timedelta(seconds=again),
        )


class ApiSettings(ConfigModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8600
    """0: any free port (tests); the service logs the one it got."""


class AndonSettings(ConfigModel):
    """Each line's current alarms as a retained MQTT message, for andon boards and HMIs."""

    mqtt: MqttConnection = Field(default_factory=MqttConnection)
    topic_prefix: str = "plantmesh/v1/andon"
    """The line's state goes to <prefix>/<plant>/<area>/<line>."""


class AlarmServiceConfig(ConfigModel):
    namespace: Namespace = ""
    kafka: KafkaConnection = Field(default_factory=KafkaConnection)
    group_id: Annotated[str, Field(min_length=1)] = "plantmesh-alarms"
    start_from: Literal["earliest", "latest"] = "earliest"
    kafka_topics: KafkaTopicSettings = Field(default_factory=KafkaTopicSettings)
    backoff: BackoffSettings = Field(default_factory=BackoffSettings)
    database: DatabaseConnection = Field(default_factory=DatabaseConnection)
    migrate: bool = True
    """Apply missing migrations at start (else refuse to start on an old schema)."""
    catalogue: Path = DEFAULT_CATALOGUE
    escalation: Path | None = None
    """Escalation policies and contacts (relative to this file); none: nobody is notified."""
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    influxdb: InfluxConnection | None = None
    """Every transition as a point of measurement `alarm_state` (none: not written)."""
    andon: AndonSettings | None = None
    incidents: bool = True
    """Also take the network incidents of incidents.events (the correlation stage's)."""
    tick_s: Annotated[float, Field(gt=0, le=10)] = 1.0
    """How often due times (escalations, re-alarms, end of shelving) are looked at."""
    max_delivery_attempts: Annotated[int, Field(ge=1, le=100)] = 8
    registry: Path | None = None
    """The asset registry (relative to this file): machine classes for backtests in the API."""
    scorecards: ScorecardSettings = Field(default_factory=ScorecardSettings)
    """Operator positions per plant, for alarm load per position (default: a plant is one)."""

    @property
    def sinks(self) -> list[str]:
        """The outbox sinks every transition is queued for."""
        return ["kafka"] + (["influx"] if self.influxdb else []) + (["andon"] if self.andon else [])


def load_alarm_config(path: Path | str) -> AlarmServiceConfig:
    config = load_config(AlarmServiceConfig, path)
    updates: dict[str, Path | None] = {"catalogue": resolve_relative(path, config.catalogue)}
    if config.escalation is not None:
        updates["escalation"] = resolve_relative(path, config.escalation)
    if config.registry is not None:
        updates["registry"] = resolve_relative(path, config.registry)
    return config.model_copy(update=updates)
