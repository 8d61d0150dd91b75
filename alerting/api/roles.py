"""Who may do what: each role's actions, and the plant scope every token carries. Pure: the
API asks `allowed` and `in_scope` before it touches an alarm."""

from __future__ import annotations

from enum import StrEnum

ALL_PLANTS = "*"


class Role(StrEnum):
    OPERATOR = "operator"
    MAINTENANCE = "maintenance"
    PLANT_MANAGER = "plant-manager"
    HQ = "hq"
    ADMIN = "admin"


class Permission(StrEnum):
    READ = "read"
    ACKNOWLEDGE = "acknowledge"
    COMMENT = "comment"
    SHELVE = "shelve"
    RESOLVE = "resolve"
    ASSIGN = "assign"
    SERVICE = "service"
    """Take an alarm out of service and return it."""
    MAINTENANCE = "maintenance"
    """Put a machine in planned maintenance (its alarms suppressed by design) and end it."""
    BACKTEST = "backtest"
    """Run rules over the stored history (reads InfluxDB at length: not for everyone)."""


_EVERYONE = {Permission.READ, Permission.COMMENT}
_ON_SITE = _EVERYONE | {Permission.ACKNOWLEDGE, Permission.SHELVE}
_MAINTAINERS = _ON_SITE | {Permission.RESOLVE, Permission.ASSIGN, Permission.MAINTENANCE}

GRANTS: dict[Role, frozenset[Permission]] = {
    Role.OPERATOR: frozenset(_ON_SITE),
    Role.MAINTENANCE: frozenset(_MAINTAINERS),
    Role.PLANT_MANAGER: frozenset(_MAINTAINERS | {Permission.SERVICE, Permission.BACKTEST}),
    Role.HQ: frozenset(_EVERYONE | {Permission.ACKNOWLEDGE, Permission.BACKTEST}),
    Role.ADMIN: frozenset(Permission),
}
"""ISA-18.2 keeps shelving with the people on site and out-of-service with those who own the
alarm system; headquarters watches, comments and can acknowledge a network escalation."""


def allowed(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]


def in_scope(plants: list[str], plant: str) -> bool:
    return ALL_PLANTS in plants or plant in plants
