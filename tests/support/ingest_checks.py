"""The writer's checks in tests: a raw reading and batch payload to vary, and the checker at a
fixed now."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest.checks.checker import Checked, Checker, Limits
from plantmesh.dead_letters import Rejection

REGISTRY = Path(__file__).resolve().parents[2] / "deploy" / "ingest" / "registry.yaml"
NOW = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
ASSET = {"plant": "p1", "area": "a", "line": "l", "machine": "m7"}


def raw_reading(**changes: Any) -> dict[str, Any]:
    reading: dict[str, Any] = {
        "asset": ASSET,
        "signal": "temp",
        "value": 1.5,
        "source_ts": "2026-01-01T00:00:00Z",
        "gateway_ts": "2026-01-01T00:00:01Z",
    }
    reading.update(changes)
    return reading


def payload(*readings: dict[str, Any], **envelope: Any) -> bytes:
    data: dict[str, Any] = {
        "gateway_id": "gw",
        "session_id": "s1",
        "seq": 3,
        "sent_at": "2026-01-01T00:00:02Z",
        "readings": list(readings) or [raw_reading()],
    }
    data.update(envelope)
    return json.dumps(data).encode()


CHECKER = Checker(Limits())


def check(value: bytes | None, checker: Checker = CHECKER) -> Checked | Rejection:
    return checker.check(value, NOW)
