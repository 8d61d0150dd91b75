"""Alarm-management figures after ISA-18.2 and EEMUA 191: moved to plantmesh.scoring.alarm_figures
(alerting's backtests report the same figures); the names stay importable from here."""

from plantmesh.scoring.alarm_figures import (
    CHATTER_COUNT,
    CHATTER_SPAN,
    FLOOD_ABOVE,
    FREQUENT_ABOVE,
    WINDOW,
    Burst,
    IsaFigures,
    densest,
    format_isa,
    isa_figures,
)

__all__ = [
    "CHATTER_COUNT",
    "CHATTER_SPAN",
    "FLOOD_ABOVE",
    "FREQUENT_ABOVE",
    "WINDOW",
    "Burst",
    "IsaFigures",
    "densest",
    "format_isa",
    "isa_figures",
]
