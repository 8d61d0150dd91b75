"""Gateway lifecycle: birth when an agent comes up, death (MQTT last will) when it goes, and
periodic health in between."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from plantmesh.contracts.common import (
    SCHEMA_VERSION,
    AwareDatetime,
    Name,
    NonNegativeInt,
    SchemaVersion,
    SessionId,
    WireModel,
)


class GatewayState(StrEnum):
    BIRTH = "birth"
    DEATH = "death"
    HEALTH = "health"


class SourceHealth(WireModel):
    name: Name
    connected: bool
    errors: NonNegativeInt = 0
    last_seen_age_s: float | None = None


class GatewayHealth(WireModel):
    buffer_depth: NonNegativeInt = 0
    oldest_unsent_age_s: float | None = None
    dropped_batches: NonNegativeInt = 0
    dropped_readings: NonNegativeInt = 0
    """Readings refused because the agent's queue was full (the broker could not keep up)."""
    reconnects: NonNegativeInt = 0
    sources: list[SourceHealth] = Field(default_factory=list)


class GatewayStatus(WireModel):
    schema_version: SchemaVersion = SCHEMA_VERSION
    gateway_id: Name
    plant: Name
    session_id: SessionId
    state: GatewayState
    at: AwareDatetime
    agent_version: str | None = None
    health: GatewayHealth | None = None
    planned: bool = False
    """On a death: the agent stopped on purpose (a clean stop said goodbye itself). The MQTT
    last will, published by the broker when the link dies, keeps False: an unplanned loss."""
