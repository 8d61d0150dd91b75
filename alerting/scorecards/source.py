"""Scorecards from the database: the alarms that overlap a period, their trails, and the
figures per plant (with completeness from the ledger when InfluxDB is at hand)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.incidents.alarm import NETWORK_PLANT
from alerting.lifecycle.policies import EscalationConfig
from alerting.records.schema import alarm_trail, alarms
from alerting.scorecards.facts import AlarmFacts, facts_of
from alerting.scorecards.formulas import Period, PlantScorecard, scorecard
from alerting.scorecards.ledger import completeness_async
from alerting.scorecards.settings import ScorecardSettings
from plantmesh.connections import InfluxConnection
from plantmesh.influxql import InfluxQueryError

CHUNK = 500
"""Alarm ids per trail query: bounded statements on either database."""


class TrendPoint(BaseModel):
    start: datetime
    end: datetime
    scorecard: PlantScorecard


class ScorecardReport(BaseModel):
    start: datetime
    end: datetime
    plants: list[PlantScorecard]
    trend: dict[str, list[TrendPoint]]
    completeness_source: str
    """`ledger` when completeness came from InfluxDB; otherwise why it is missing."""


def ack_deadlines(escalation: EscalationConfig | None) -> dict[str, float]:
    """Policy name -> its first level's time to acknowledge."""
    if escalation is None:
        return {}
    return {p.name: p.levels[0].ack_within_s for p in escalation.policies}


async def load_facts(
    engine: AsyncEngine,
    period: Period,
    plants: list[str] | None,
    deadlines: dict[str, float],
) -> list[AlarmFacts]:
    """The plants' alarms (network incidents aside) opened before the period's end and not
    closed before its start. `plants` None: every plant."""
    query = select(alarms).where(
        alarms.c.plant != NETWORK_PLANT,
        alarms.c.opened_at < period.end,
        or_(alarms.c.closed_at.is_(None), alarms.c.closed_at >= period.start),
    )
    if plants is not None:
        query = query.where(alarms.c.plant.in_(plants))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
        trails: dict[str, list[Any]] = defaultdict(list)
        for i in range(0, len(rows), CHUNK):
            ids = [r.id for r in rows[i : i + CHUNK]]
            entries = await conn.execute(
                select(alarm_trail)
                .where(alarm_trail.c.alarm_id.in_(ids))
                .order_by(alarm_trail.c.alarm_id, alarm_trail.c.seq)
            )
            for entry in entries:
                trails[entry.alarm_id].append(entry)
    return [facts_of(r, trails[r.id], deadlines.get) for r in rows]


def plant_scorecards(
    facts: Sequence[AlarmFacts],
    period: Period,
    settings: ScorecardSettings,
    plants: Sequence[str] = (),
) -> list[PlantScorecard]:
    """One scorecard per plant that had alarms or is named in `plants`, by plant name."""
    by_plant: dict[str, list[AlarmFacts]] = {p: [] for p in plants}
    for fact in facts:
        by_plant.setdefault(fact.plant, []).append(fact)
    return [
        scorecard(
            plant, by_plant[plant], period, settings.position_of, settings.positions_of(plant)
        )
        for plant in sorted(by_plant)
    ]


async def report(
    engine: AsyncEngine,
    period: Period,
    *,
    plants: list[str] | None = None,
    settings: ScorecardSettings | None = None,
    escalation: EscalationConfig | None = None,
    influx: InfluxConnection | None = None,
    buckets: int = 0,
) -> ScorecardReport:
    """The scorecards of `plants` (None: all) over `period`, with `buckets` trend points each."""
    settings = settings or ScorecardSettings()
    facts = await load_facts(engine, period, plants, ack_deadlines(escalation))
    shares: dict[str, float] = {}
    source = "no InfluxDB configured"
    if influx is not None:
        try:
            shares = await completeness_async(influx, period.start, period.end)
            source = "ledger"
        except (InfluxQueryError, OSError, ValueError) as exc:
            # The scorecard of what people did stands without the ledger; it says why.
            source = f"ledger unavailable: {exc}"
    known = [p for p in shares if plants is None or p in plants]
    cards = plant_scorecards(facts, period, settings, [*settings.positions, *known])
    if plants is not None:
        cards = [c for c in cards if c.plant in plants]
    for card in cards:
        card.completeness_pct = shares.get(card.plant)
    trend: dict[str, list[TrendPoint]] = {c.plant: [] for c in cards}
    for part in period.split(buckets) if buckets > 0 else []:
        for card in plant_scorecards(facts, part, settings, list(trend)):
            if card.plant in trend:
                trend[card.plant].append(TrendPoint(start=part.start, end=part.end, scorecard=card))
    return ScorecardReport(
        start=period.start, end=period.end, plants=cards, trend=trend, completeness_source=source
    )
