"""The issue-type catalogue: the operational language every plant shares.

Every rule names one issue type and every alert carries it, so the same problem has the same
name, owner role, default priority and first response in every plant, and plants can be compared
issue type by issue type. The catalogue is a versioned YAML file (deploy/alerting/issue-types.yaml),
validated like every configuration: an unknown key, a bad id or a rule naming a type that is
not in it fails at start, naming the file and the key.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field

from plantmesh.config import ConfigModel, load_config
from plantmesh.contracts import Name, Severity

DEFAULT_CATALOGUE = Path(__file__).with_name("issue-types.yaml")
"""In the source tree a link to deploy/alerting/issue-types.yaml; a wheel holds a copy."""


class OwnerRole(StrEnum):
    """Who answers first: the role, not a person (people come with escalation policies)."""

    OPERATOR = "operator"
    MAINTENANCE = "maintenance"
    INSTRUMENTATION = "instrumentation"
    OT_IT = "ot-it"


class IssueType(ConfigModel):
    title: Annotated[str, Field(min_length=1, max_length=120)]
    description: Annotated[str, Field(min_length=1)]
    priority: Severity
    """The default priority of its alerts (a rule may set its own severity)."""
    owner: OwnerRole
    first_response: Annotated[str, Field(min_length=1)]
    """What the first person on site does; shown with every alert of this type."""


class Catalogue(ConfigModel):
    version: Annotated[str, Field(min_length=1, max_length=64)]
    issue_types: Annotated[dict[Name, IssueType], Field(min_length=1)]

    def get(self, issue_type: str) -> IssueType:
        try:
            return self.issue_types[issue_type]
        except KeyError:
            known = ", ".join(sorted(self.issue_types))
            raise KeyError(f"unknown issue type {issue_type!r}; known: {known}") from None


def load_catalogue(path: Path | str = DEFAULT_CATALOGUE) -> Catalogue:
    return load_config(Catalogue, path)
