"""Rule types, one module each, registered by their configuration `type:` in RULE_TYPES.

Adding a rule type: a module with its config model (deriving RuleConfigBase, with a
`type: Literal[...]`) and a class satisfying `Rule` whose constructor takes the config and a
RuleIdentity; an entry in RULE_TYPES; a member of the RuleConfig union."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeAlias

from pydantic import Field

from alerting.catalogue import Catalogue
from alerting.rules.bad_quality import BadQualityRule, BadQualityRuleConfig
from alerting.rules.base import Context, Rule, RuleConfigBase, RuleIdentity, StateGate
from alerting.rules.flatline import FlatlineRule, FlatlineRuleConfig
from alerting.rules.oscillation import OscillationRule, OscillationRuleConfig
from alerting.rules.rate_of_change import RateOfChangeRule, RateOfChangeRuleConfig
from alerting.rules.spc import SpcRule, SpcRuleConfig
from alerting.rules.stale import StaleRule, StaleRuleConfig
from alerting.rules.state_flapping import StateFlappingRule, StateFlappingRuleConfig
from alerting.rules.threshold import ThresholdRule, ThresholdRuleConfig
from alerting.rules.vibration_zone import VibrationZoneRule, VibrationZoneRuleConfig

RuleConfig: TypeAlias = Annotated[
    ThresholdRuleConfig
    | RateOfChangeRuleConfig
    | FlatlineRuleConfig
    | StaleRuleConfig
    | VibrationZoneRuleConfig
    | SpcRuleConfig
    | OscillationRuleConfig
    | StateFlappingRuleConfig
    | BadQualityRuleConfig,
    Field(discriminator="type"),
]

RULE_TYPES: dict[str, Callable[[Any, RuleIdentity], Rule]] = {
    "threshold": ThresholdRule,
    "rate_of_change": RateOfChangeRule,
    "flatline": FlatlineRule,
    "stale": StaleRule,
    "vibration_zone": VibrationZoneRule,
    "spc": SpcRule,
    "oscillation": OscillationRule,
    "state_flapping": StateFlappingRule,
    "bad_quality": BadQualityRule,
}


def build_rule(config: RuleConfig, catalogue: Catalogue) -> Rule:
    """The rule, stamped with its issue type's default priority unless it sets a severity.
    Raises KeyError for an issue type the catalogue does not have."""
    issue = catalogue.get(config.issue_type)
    return RULE_TYPES[config.type](config, RuleIdentity.of(config, issue.priority))


__all__ = [
    "RULE_TYPES",
    "Context",
    "Rule",
    "RuleConfig",
    "RuleConfigBase",
    "RuleIdentity",
    "StateGate",
    "ThresholdRule",
    "ThresholdRuleConfig",
    "build_rule",
]
