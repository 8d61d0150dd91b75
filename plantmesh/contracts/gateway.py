"""Gateway lifecycle: birth when an agent comes up, death (MQTT last will) when it goes, and
periodic health in between."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from plantmesh.contracts.common import (
    SCHEMA_VERSION,
    Name,
    NonNegativeInt,
    SchemaVersion,
    SessionId,
    StrictBool,
    StrictSeconds,
    Timestamp,
    WireModel,
)

AGENT_VERSION_MAX_LENGTH = 128


class GatewayState(StrEnum):
    BIRTH = "birth"
    DEATH = "death"
    HEALTH = "health"


class SourceHealth(WireModel):
    name: Name
    connected: StrictBool
    errors: NonNegativeInt = 0
    last_seen_age_s: StrictSeconds | None = None


class GatewayHealth(WireModel):
    buffer_depth: NonNegativeInt = 0
    oldest_unsent_age_s: StrictSeconds | None = None
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
    at: Timestamp
    agent_version: Annotated[str, Field(max_length=AGENT_VERSION_MAX_LENGTH)] | None = None
    health: GatewayHealth | None = None
    planned: StrictBool = False
    """On a death: the agent stopped on purpose (a clean stop said goodbye itself). The MQTT
    last will, published by the broker when the link dies, keeps False: an unplanned loss."""
