"""Building blocks shared by every wire contract."""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

SchemaVersion = Literal[1]
"""The versions a contract's `schema_version` accepts."""
SCHEMA_VERSION: SchemaVersion = 1
"""The version every contract is written in."""

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""One path segment of the asset hierarchy, a gateway or a signal name: safe in MQTT topics,
Kafka keys, InfluxDB tags and file names alike."""
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]

SESSION_ID_MAX_LENGTH = 64
SessionId = Annotated[str, Field(min_length=1, max_length=SESSION_ID_MAX_LENGTH)]
"""One run of a gateway agent: with `seq`, what makes a batch traceable."""


def _require_timezone(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone (use UTC, e.g. 2026-01-01T00:00:00Z)")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_require_timezone)]


class WireModel(BaseModel):
    """Base of every wire contract: strict about unknown keys, immutable once decoded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AssetPath(WireModel):
    """Where a machine sits in the ISA-95 hierarchy: plant / area / line / machine."""

    plant: Name
    area: Name
    line: Name
    machine: Name

    @cached_property
    def key(self) -> str:
        """The canonical `plant/area/line/machine` string (also the Kafka key prefix); made once
        per instance (alerting asks it several times per reading). Not a field: equality,
        hashing and the wire form ignore it."""
        return f"{self.plant}/{self.area}/{self.line}/{self.machine}"

    @classmethod
    def parse(cls, text: str) -> AssetPath:
        parts = text.split("/")
        if len(parts) != 4:
            raise ValueError(f"asset path must be plant/area/line/machine, got {text!r}")
        return cls(plant=parts[0], area=parts[1], line=parts[2], machine=parts[3])

    def __str__(self) -> str:
        return self.key


NonNegativeInt = Annotated[int, Field(ge=0)]
