"""Data completeness per plant over a period, from the ingest ledger's figures in InfluxDB.

The ledger writes each gateway's running totals (batches expected and received since its
first batch) as measurement `completeness`. A period's share is what the totals grew by inside
it: the last totals before its end minus the last totals before its start, summed per plant.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime

from plantmesh.connections import InfluxConnection
from plantmesh.influxql import query

Totals = dict[tuple[str, str], tuple[float, float]]


def _statement(before: datetime) -> str:
    stamp = before.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return (
        "SELECT last(batches_expected) AS expected, last(batches_received) AS received "
        f"FROM completeness WHERE time < '{stamp}' GROUP BY plant, gateway"
    )


def _totals(influx: InfluxConnection, before: datetime) -> Totals:
    found: Totals = {}
    statement, token = _statement(before), influx.token_value()
    for series in query(influx.url, influx.database, statement, influx.timeout_s, token=token):
        for row in series.rows():
            found[series.tags.get("plant", ""), series.tags.get("gateway", "")] = (
                float(row.get("expected") or 0),
                float(row.get("received") or 0),
            )
    return found


def completeness(influx: InfluxConnection, start: datetime, end: datetime) -> dict[str, float]:
    """plant -> percent of the batches expected in [start, end) that arrived (plants whose
    gateways expected nothing in the period are left out)."""
    before, after = _totals(influx, start), _totals(influx, end)
    grew: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for key, (expected, received) in after.items():
        was_expected, was_received = before.get(key, (0.0, 0.0))
        grew[key[0]][0] += max(0.0, expected - was_expected)
        grew[key[0]][1] += max(0.0, received - was_received)
    return {
        plant: round(min(100.0, 100 * received / expected), 3)
        for plant, (expected, received) in grew.items()
        if expected > 0
    }


async def completeness_async(
    influx: InfluxConnection, start: datetime, end: datetime
) -> dict[str, float]:
    return await asyncio.to_thread(completeness, influx, start, end)
