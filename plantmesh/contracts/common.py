"""Building blocks shared by every wire contract."""

from __future__ import annotations

import re
from datetime import datetime
from functools import cached_property
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)


def _require_int(value: object) -> object:
    # Literal[1] alone would take 1.0 and true too (they compare equal to 1).
    if value.__class__ is not int:
        raise ValueError("schema_version must be the JSON integer 1")
    return value


SchemaVersion = Annotated[Literal[1], BeforeValidator(_require_int)]
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

TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
"""The one text form of a wire timestamp: RFC 3339 with seconds, at most six fraction digits
(a datetime keeps microseconds: a seventh digit would be cut off silently) and an offset."""
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)


def _require_rfc3339_text(value: object) -> object:
    """Text in TIMESTAMP_PATTERN's form, or a datetime built in Python; never an epoch number,
    which pydantic would otherwise read as seconds or milliseconds by its size."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _TIMESTAMP.fullmatch(value):
        return value
    raise ValueError(
        "timestamp must be RFC 3339 text with seconds, at most 6 fraction digits and a timezone "
        "offset (e.g. 2026-01-01T00:00:00.123456Z)"
    )


Timestamp = Annotated[
    datetime, BeforeValidator(_require_rfc3339_text), AfterValidator(_require_timezone)
]
"""A timestamp of what gateways send (readings, batches, status): AwareDatetime, in one form."""


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


NonNegativeInt = Annotated[int, Field(ge=0, strict=True)]
"""Strict: a JSON integer, never "5" or 5.0 (one contract for every checking path)."""

SEQ_MAX = 2**53 - 1
"""The highest sequence number: exact as a float in every JSON reader (JavaScript included), and
the ledger's sums over sessions stay far inside InfluxDB's 64-bit integers."""
Seq = Annotated[int, Field(ge=0, le=SEQ_MAX, strict=True)]
StrictBool = Annotated[bool, Field(strict=True)]
StrictSeconds = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""A duration in seconds: a JSON number (an integer too), never text."""
