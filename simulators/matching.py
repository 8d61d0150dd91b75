"""The units an alert log is scored in and how they are paired: moved to plantmesh.scoring.matching
(alerting's backtests score the same way); the names stay importable from here."""

from plantmesh.scoring.matching import (
    GATEWAY_AREA,
    Episode,
    Event,
    Pairing,
    episodes,
    group_events,
    is_gateway,
    pair,
)

__all__ = [
    "GATEWAY_AREA",
    "Episode",
    "Event",
    "Pairing",
    "episodes",
    "group_events",
    "is_gateway",
    "pair",
]
