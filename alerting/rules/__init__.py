"""Rule types, one module each, registered by their configuration `type:` in RULE_TYPES.

Adding a rule type: a module with its config model (deriving RuleConfigBase, with a
`type: Literal[...]`) and a class satisfying `Rule`; an entry in RULE_TYPES; a member of
RuleConfig (which then becomes `Annotated[A | B, Field(discriminator="type")]`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from alerting.rules.base import Rule, RuleConfigBase
from alerting.rules.threshold import ThresholdRule, ThresholdRuleConfig

RuleConfig: TypeAlias = ThresholdRuleConfig

RULE_TYPES: dict[str, Callable[[Any], Rule]] = {
    "threshold": ThresholdRule,
}


def build_rule(config: RuleConfig) -> Rule:
    return RULE_TYPES[config.type](config)


__all__ = [
    "RULE_TYPES",
    "Rule",
    "RuleConfig",
    "RuleConfigBase",
    "ThresholdRule",
    "ThresholdRuleConfig",
    "build_rule",
]
