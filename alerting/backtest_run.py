"""A backtest over InfluxDB's history, from rules to report: what `plantmesh alerts backtest` and
`POST /api/v1/backtests` both run, so a rule tried in the console and on a terminal gives the
same answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import yaml

from alerting.backtest import Backtest, Progress
from alerting.backtest_influx import HistoryQuery, HistoryStats, RunQuery, read_influx
from alerting.backtest_report import BacktestReport, InputSummary, build_report
from alerting.catalogue import load_catalogue
from alerting.config import AlertingConfig, check_issue_types
from plantmesh.config import ConfigError, validate_config
from plantmesh.contracts import AlertEvent
from plantmesh.fleet import Fleet
from plantmesh.scoring.score import DEFAULT_GRACE
from plantmesh.scoring.truth import TruthRecord

SERVER_PATHS = ("catalogue", "alert_log")
"""Keys naming files: rules sent over the API use the server's own, never a path of theirs."""


@dataclass(frozen=True)
class HistoryBacktest:
    report: BacktestReport
    events: list[AlertEvent]


def config_from_text(text: str, where: str = "rules") -> AlertingConfig:
    """Rules sent as YAML text: an alerting configuration, or one with only `rules:` (or a bare
    list of rules), defaults for the rest. No `${VAR}` expansion (the server's environment is
    not the sender's to read) and no file paths. Raises ConfigError naming `where` and the key."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(where, [f"not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    if isinstance(data, list):
        data = {"rules": data}
    if not isinstance(data, dict):
        raise ConfigError(where, ["<top level>: expected a mapping with a rules: list"])
    refused = [key for key in SERVER_PATHS if key in data]
    if refused:
        raise ConfigError(
            where, [f"{key}: not accepted here (the server's own is used)" for key in refused]
        )
    config = validate_config(AlertingConfig, data, where)
    check_issue_types(config, load_catalogue(config.catalogue), where)
    return config


def run_history_backtest(
    config: AlertingConfig,
    history: HistoryQuery,
    start: datetime,
    end: datetime,
    *,
    fleet: Fleet | None = None,
    truth: Sequence[TruthRecord] | None = None,
    grace: timedelta = DEFAULT_GRACE,
    progress: Progress | None = None,
    advance_every: int = 1,
    run_query: RunQuery | None = None,
) -> HistoryBacktest:
    """The rules of `config` over the readings of [start, end) (raises InfluxQueryError)."""
    stats = HistoryStats()
    run = Backtest(config, advance_every=advance_every, progress=progress)
    batches = read_influx(history, start, end, stats=stats, fleet=fleet, run_query=run_query)
    for batch, machine_class in batches:
        run.feed(batch, machine_class)
    events = run.finish()
    run.progress.report(run.engine.newest)
    influx = history.influx
    source = InputSummary(
        source=f"{history.measurement} in {influx.database} on {influx.url}",
        rows=stats.rows,
        readings=stats.readings,
        batches=stats.batches,
        bad_rows=dict(stats.bad_rows),
        rule_errors=run.engine.rule_errors,
        event_time_reached=run.engine.newest,
    )
    report = build_report(
        events,
        rules=[rule.name for rule in config.rules],
        start=start,
        end=end,
        source=source,
        truth=truth,
        grace=grace,
    )
    return HistoryBacktest(report, events)
