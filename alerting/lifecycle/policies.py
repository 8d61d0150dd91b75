"""Escalation policies every plant shares, and each plant's own contacts (YAML, validated).

A policy is chosen by issue type and priority; its levels name roles (operator, line
maintenance, plant maintenance lead, plant manager, headquarters reliability ...), each with the
time it has to acknowledge before the next level is told. Contacts say who holds a role in a
plant (or in every plant, `plant: "*"`) and through which channels they are reached. So plant-a
and plant-b escalate a bearing over-temperature in the same steps, to their own people.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator

from plantmesh.config import ConfigModel, load_config
from plantmesh.contracts import Name, Severity

Seconds = Annotated[float, Field(gt=0, le=7 * 24 * 3600)]
ANY_PLANT = "*"


class Level(ConfigModel):
    roles: Annotated[list[Name], Field(min_length=1)]
    ack_within_s: Seconds
    """How long this level has to acknowledge before the next one is told."""


class EscalationPolicy(ConfigModel):
    name: Name
    issue_types: list[Name] = Field(default_factory=list)
    """The issue types it applies to; empty: every type."""
    priorities: list[Severity] = Field(default_factory=list)
    """The priorities it applies to; empty: every priority."""
    levels: Annotated[list[Level], Field(min_length=1, max_length=10)]
    repeat: Annotated[int, Field(ge=1, le=10)] = 1
    """How many times the levels are run through before escalation stops."""
    resolve_within_s: Seconds | None = None
    """Acknowledged but not resolved this long: the next level is told (re-escalation)."""
    scope: Literal["machine", "network"] = "machine"
    """`machine`: a machine's alarms; `network`: network incidents (the same issue in several
    plants), whose contacts are those of the plant `network` (or `*`)."""

    def applies(self, issue_type: str, priority: Severity, scope: str = "machine") -> bool:
        types_ok = not self.issue_types or issue_type in self.issue_types
        in_scope = self.scope == scope
        return in_scope and types_ok and (not self.priorities or priority in self.priorities)


class Webhook(ConfigModel):
    type: Literal["webhook"]
    url: Annotated[str, Field(pattern=r"^https?://")]
    secret: SecretStr | None = None
    """Signs each body with HMAC-SHA256 (header X-Plantmesh-Signature) when set."""


class ChatWebhook(ConfigModel):
    type: Literal["slack", "teams"]
    url: Annotated[str, Field(pattern=r"^https?://")]


class Email(ConfigModel):
    type: Literal["email"]
    to: Annotated[list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]], Field(min_length=1)]


Channel = Annotated[Webhook | ChatWebhook | Email, Field(discriminator="type")]


class Contact(ConfigModel):
    plant: Annotated[str, Field(pattern=r"^(\*|[A-Za-z0-9][A-Za-z0-9_.-]{0,63})$")]
    role: Name
    name: Name
    """Who this is (a person or a team), as deliveries and the trail name them."""
    channels: Annotated[list[Channel], Field(min_length=1)]


class Smtp(ConfigModel):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    sender: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")] = "plantmesh@localhost"
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    timeout_s: Seconds = 10.0


class EscalationConfig(ConfigModel):
    version: Annotated[str, Field(min_length=1, max_length=64)]
    policies: Annotated[list[EscalationPolicy], Field(min_length=1)]
    contacts: list[Contact] = Field(default_factory=list)
    smtp: Smtp = Field(default_factory=Smtp)
    console_url: str = "http://127.0.0.1:8600"
    """Where a notification's link to the alert points."""

    @model_validator(mode="after")
    def _consistent(self) -> EscalationConfig:
        names = [p.name for p in self.policies]
        if len(set(names)) != len(names):
            raise ValueError(f"policy names must be unique: {names}")
        held = {c.role for c in self.contacts}
        for policy in self.policies:
            for number, level in enumerate(policy.levels, 1):
                for role in level.roles:
                    if role not in held:
                        raise ValueError(
                            f"policy {policy.name!r} level {number}: no contact holds role "
                            f"{role!r} in any plant"
                        )
        return self

    def policy_for(
        self, issue_type: str, priority: Severity, scope: str = "machine"
    ) -> EscalationPolicy | None:
        """The first policy that applies, in file order (put the specific ones first)."""
        return next((p for p in self.policies if p.applies(issue_type, priority, scope)), None)

    def contacts_for(self, plant: str, roles: list[str]) -> list[Contact]:
        """The plant's own holders of the roles; a role nobody holds there goes to `*`."""
        found: list[Contact] = []
        for role in roles:
            own = [c for c in self.contacts if c.role == role and c.plant == plant]
            found += own or [c for c in self.contacts if c.role == role and c.plant == ANY_PLANT]
        return found


def load_escalation(path: Path | str) -> EscalationConfig:
    return load_config(EscalationConfig, path)
