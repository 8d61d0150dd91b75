"""Builders for the stale rule's tests (tests/unit/test_alerting_rule_stale*.py)."""

from __future__ import annotations

from alerting.rules.stale import StaleRule, StaleRuleConfig
from plantmesh.contracts import AlertEvent, AssetPath, Reading
from tests.support.alerting import MILL, T0, at


def reading(t: float, signal: str = "spindle", asset: AssetPath = MILL, **kw: object) -> Reading:
    return Reading.model_validate(
        {"asset": asset, "signal": signal, "value": 1.0, "source_ts": at(t), "gateway_ts": at(t)}
        | kw
    )


def make(**kw: object) -> StaleRule:
    config = {"name": "stale", "issue_type": "comms-loss", "signal": "spindle", "for_s": 60} | kw
    config.setdefault("type", "stale")
    return StaleRule(StaleRuleConfig.model_validate(config))


def timeline(events: list[AlertEvent]) -> list[tuple[str, str, float]]:
    return [(e.kind.value, e.asset.key, (e.at - T0).total_seconds()) for e in events]


def every(start: int, stop: int, step: int = 10, signal: str = "spindle") -> list[Reading]:
    return [reading(t, signal) for t in range(start, stop, step)]


def plant_machines(plant: str, n: int) -> list[AssetPath]:
    return [AssetPath.parse(f"{plant}/area/line/m-{i:02d}") for i in range(n)]
