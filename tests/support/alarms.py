"""Alert events and a migrated alarm database for the lifecycle and records tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.records.database import open_database
from alerting.records.migrate import upgrade
from plantmesh.contracts import AlertEvent, AlertEventKind, AssetPath, Evidence, Severity

T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


def alert_event(
    alert_id: str,
    kind: str = "raised",
    *,
    machine: str = "mill-01",
    plant: str = "plant-a",
    rule: str = "mill-vibration",
    at: float = 0.0,
    gateway: str | None = "gw-1",
) -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id,
        kind=AlertEventKind(kind),
        issue_type="vibration-instability",
        rule=rule,
        rule_version="0123456789ab",
        machine_class="mill",
        asset=AssetPath.parse(f"{plant}/milling/line1/{machine}"),
        signal="vibration_mm_s",
        severity=Severity.HIGH,
        at=T0 + timedelta(seconds=at),
        evidence=Evidence(summary=f"{alert_id} {kind}", condition="zone C for >= 10 s"),
        gateway_id=gateway,
    )


def comms_loss_event(
    alert_id: str, kind: str = "raised", *, gateway: str = "gw-1", plant: str = "plant-a"
) -> AlertEvent:
    """A gateway's own comms-loss alert, as the stale rule names it."""
    return AlertEvent(
        alert_id=alert_id,
        kind=AlertEventKind(kind),
        issue_type="comms-loss",
        rule="gateway-silent",
        rule_version="0123456789ab",
        asset=AssetPath.parse(f"{plant}/gateway/gateway/{gateway}"),
        signal="gateway-status",
        severity=Severity.HIGH,
        at=T0,
        evidence=Evidence(summary=f"{gateway} {kind}", condition="death message"),
        gateway_id=gateway,
    )


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.start = start
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@asynccontextmanager
async def migrated(url: str) -> AsyncIterator[AsyncEngine]:
    engine = open_database(url)
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()
