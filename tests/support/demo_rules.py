"""The demo's alerting rules (deploy/demo/alerting.yaml) as a configuration and an engine, for
engine-level tests on simulated input (tests.support.sim_stream)."""

from __future__ import annotations

import yaml

from alerting.catalogue import load_catalogue
from alerting.config import AlertingConfig
from alerting.engine import Engine
from tests.support.sim_stream import DEMO


def demo_config(**rule_overrides: object) -> AlertingConfig:
    """The demo's rules; `rule_overrides`: keys to change, by rule name."""
    raw = yaml.safe_load((DEMO / "alerting.yaml").read_text())
    for rule in raw["rules"]:
        rule.update(rule_overrides.get(rule["name"], {}))  # type: ignore[call-overload]
    return AlertingConfig.model_validate(raw)


def engine(config: AlertingConfig | None = None) -> Engine:
    config = config or demo_config()
    catalogue = load_catalogue(config.catalogue)
    return Engine.from_config(config.rules, catalogue, lateness_s=config.lateness_s)
