"""Rule types, one module each, registered by their configuration `type:` in RULE_TYPES.

Adding a rule type: a module with its config model (deriving RuleConfigBase, with a
`type: Literal[...]`) and a class satisfying `Rule` whose constructor takes the config and a
RuleIdentity; an entry in RULE_TYPES; a member of RuleConfig (which then becomes
`Annotated[A | B, Field(discriminator="type")]`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from alerting.catalogue import Catalogue
from alerting.rules.base import Context, Rule, RuleConfigBase, RuleIdentity, StateGate
from alerting.rules.threshold import ThresholdRule, ThresholdRuleConfig

RuleConfig: TypeAlias = ThresholdRuleConfig

RULE_TYPES: dict[str, Callable[[Any, RuleIdentity], Rule]] = {
    "threshold": ThresholdRule,
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
