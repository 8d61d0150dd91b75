"""The state gate: open while the machine is in a state, and with `settle_s` only once it has
been in it that long (the warm-up after a start is not a fault)."""

from __future__ import annotations

from typing import Any

from alerting.catalogue import load_catalogue
from alerting.config import AlertingConfig
from alerting.engine import Engine
from alerting.rules.base import StateGate
from plantmesh.contracts import Reading
from tests.support.alerting import MILL, RAISED, at, timeline

RULE: dict[str, Any] = {
    "name": "hot",
    "type": "threshold",
    "issue_type": "bearing-overtemperature",
    "signal": "bearing_temp",
    "above": 90.0,
    "on_delay_s": 0.0,
}


def engine(gate: dict[str, Any]) -> Engine:
    config = AlertingConfig.model_validate({"rules": [{**RULE, "gate": gate}]})
    return Engine.from_config(config.rules, load_catalogue(config.catalogue))


def reading(t: float, signal: str, value: float | bool) -> Reading:
    return Reading(asset=MILL, signal=signal, value=value, source_ts=at(t), gateway_ts=at(t))


def test_a_settling_gate_opens_only_after_the_machine_has_been_running_that_long() -> None:
    target = engine({"signal": "running", "equals": True, "settle_s": 60})
    events = target.process(reading(0, "running", True))
    events += target.process(reading(30, "bearing_temp", 95.0))  # warming up: not a fault
    events += target.process(reading(59, "running", True))  # polled again: still since 0
    events += target.process(reading(61, "bearing_temp", 95.0))
    assert timeline(events) == [(61.0, RAISED)]


def test_a_restart_settles_again() -> None:
    target = engine({"signal": "running", "equals": True, "settle_s": 60})
    readings = [
        reading(0, "running", True),
        reading(100, "running", False),
        reading(120, "running", True),
        reading(150, "bearing_temp", 95.0),  # 30 s after the restart
    ]
    assert [e for r in readings for e in target.process(r)] == []
    assert timeline(target.process(reading(181, "bearing_temp", 96.0))) == [(181.0, RAISED)]


def test_a_gate_without_settle_keeps_its_rule_version() -> None:
    plain = StateGate(signal="running", equals=True)
    assert "settle_s" not in plain.model_dump_json()
    assert "settle_s" in StateGate(signal="running", equals=True, settle_s=5).model_dump_json()
