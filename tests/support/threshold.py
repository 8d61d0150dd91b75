"""The threshold rule in tests: readings of three presses at explicit source times, a rule with
overrides, and an engine fed a timeline."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, timezone
from typing import Any

from alerting.engine import Engine
from alerting.rules import ThresholdRule, ThresholdRuleConfig
from plantmesh.contracts import (
    AlertEvent,
    AssetPath,
    Quality,
    Reading,
)
from tests.support.alerting import at

PRESS = AssetPath.parse("plant-a/stamping/line1/press-01")
PRESS2 = AssetPath.parse("plant-a/stamping/line1/press-02")
PLANT_B = AssetPath.parse("plant-b/stamping/line1/press-01")


def reading(
    t: float,
    value: float | bool | str,
    *,
    asset: AssetPath = PRESS,
    signal: str = "bearing_temp",
    quality: Quality = Quality.GOOD,
    status_code: int = 0,
    tz: timezone = UTC,
) -> Reading:
    ts = at(t).astimezone(tz)
    return Reading(
        asset=asset,
        signal=signal,
        value=value,
        unit="degC",
        quality=quality,
        status_code=status_code,
        source_ts=ts,
        gateway_ts=ts,
    )


BEARING_RULE: dict[str, Any] = {
    "name": "bearing-overtemp",
    "type": "threshold",
    "issue_type": "bearing-overtemperature",
    "signal": "bearing_temp",
    "above": 90.0,
    "deadband": 5.0,
    "on_delay_s": 5.0,
    "severity": "high",
}
"""The threshold rule most alerting tests use, as a config would state it."""


def rule(**overrides: Any) -> ThresholdRule:
    return ThresholdRule(ThresholdRuleConfig.model_validate(BEARING_RULE | overrides))


def feed(engine: Engine, readings: Iterable[Reading]) -> list[AlertEvent]:
    events: list[AlertEvent] = []
    for r in readings:
        events.extend(engine.process(r))
    return events


def steps(start: float, stop: float, step: float, value: float) -> list[Reading]:
    """Readings every `step` s from `start` up to and excluding `stop`, all at `value`."""
    count = round((stop - start) / step)
    return [reading(round(start + i * step, 6), value) for i in range(count)]
