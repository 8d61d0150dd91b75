"""Scoring an alert log against ground truth (`plantmesh sim score`): moved to
plantmesh.scoring.score (alerting's backtests score the same way); the names stay importable
from here."""

from plantmesh.scoring.score import (
    DEFAULT_GRACE,
    AlertLogError,
    KindScore,
    Paged,
    Score,
    dump_score,
    format_score,
    read_alerts,
    score,
)

__all__ = [
    "DEFAULT_GRACE",
    "AlertLogError",
    "KindScore",
    "Paged",
    "Score",
    "dump_score",
    "format_score",
    "read_alerts",
    "score",
]
