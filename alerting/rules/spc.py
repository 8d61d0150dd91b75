"""Statistical process control per series: small sustained shifts of a process value (issue type
process-drift), which no fixed threshold catches without paging on noise.

    learning --learn_s and min_points--> baseline (frozen) --> charts on every reading
    charts: EWMA | CUSUM | Western Electric 1-4 on z = (x - centre) / sigma (spc_charts)
    condition holds while any enabled chart signals -> Episodes (on_delay_s / off_delay_s)

Only good readings with the gate open (e.g. the machine running) are learned from and charted.
A reading with the gate closed does not hold the condition: a raised alert clears through the
normal path (off_delay_s); the charts keep their state and go on when the gate opens again.
Bad-quality readings are ignored and counted; a reading not newer than the last accepted one of
its series is ignored as out of order, so late and duplicated batches change no decision.

The baseline (spc_baseline) is learned once and then stays fixed (frozen): relearning is by
command (`relearn`), never silent, because a baseline that follows the process absorbs the very
drift this rule exists to see. `adaptive: true` opts into relearning from each later learn_s
window of in-control readings (no chart signalling, no episode open); `freeze` stops that.
While a series (re)learns, its condition does not hold, so an open alert clears normally.

The charts have memory (EWMA, CUSUM) and so need no deadband. False alarms are by design: at
defaults an in-control normal series (1 Hz, 600-point baseline) raises about 14 episodes per
1000 points (WE rules 1-4 alone have an ARL of about 90), EWMA + CUSUM alone about 4;
on_delay_s 10 brings that to about 0.25, on_delay_s 5 to about 0.7 (a 1.5 sigma shift is
then raised 7-19 points after it starts; at defaults 2-10 points).

All of it is plain data: `export_state` / `import_state` round-trip exactly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from alerting.evidence import PointWindow, iso, num
from alerting.rules.base import NO_CONTEXT, Context, RuleConfigBase, RuleIdentity, is_bad
from alerting.rules.common import (
    HISTORY_MARGIN_S,
    NonNegativeFloat,
    PositiveFloat,
    SeriesRule,
    subject_of,
    unit_suffix,
)
from alerting.rules.episodes import Episodes, Subject, Transition
from alerting.rules.spc_baseline import Baseline, Learner, SpcSeries, parse_ts
from alerting.rules.spc_charts import WE_NAMES, Charts, ChartStatus, we_text
from plantmesh.contracts import AlertEvent, Evidence, Reading

WeRule = Literal[1, 2, 3, 4]
STATE_VERSION = 1


def _all_we_rules() -> list[WeRule]:
    return [1, 2, 3, 4]


class SpcRuleConfig(RuleConfigBase):
    type: Literal["spc"]
    learn_s: PositiveFloat = 600.0
    """Event time the baseline is learned over (from the first good, gated reading)."""
    min_points: Annotated[int, Field(ge=3)] = 30
    """Fewest readings a baseline is learned from; learning waits past learn_s for them."""
    max_learn_points: Annotated[int, Field(ge=3)] = 10_000
    """Memory bound: a learning window ends early once it holds this many readings."""
    min_sigma: PositiveFloat = 1e-9
    """Floor of the baseline sigma (a constant series); set it to the sensor's resolution."""
    adaptive: bool = False
    """Relearn the baseline from each later learn_s window of in-control readings."""
    ewma: bool = True
    ewma_lambda: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.2
    """EWMA weight of the newest point."""
    ewma_l: PositiveFloat = 3.0
    """EWMA limit in multiples of the EWMA's own (time-varying) sigma."""
    cusum: bool = True
    cusum_k: NonNegativeFloat = 0.5
    """CUSUM allowance, in baseline sigmas (half the shift to detect fastest)."""
    cusum_h: PositiveFloat = 5.0
    """CUSUM decision interval, in baseline sigmas."""
    cusum_ceiling: Annotated[float, Field(ge=1, allow_inf_nan=False)] = 2.0
    """Cap of each CUSUM sum in multiples of h: bounds how long a clear takes."""
    western_electric: list[WeRule] = Field(default_factory=_all_we_rules)
    """Western Electric rules to apply (1: beyond 3, 2: 2 of 3 beyond 2, 3: 4 of 5 beyond 1,
    4: 8 on one side); empty turns them off."""
    on_delay_s: NonNegativeFloat = 0.0
    """How long, in source time, a chart must keep signalling before the alert is raised."""
    off_delay_s: NonNegativeFloat = 0.0
    """How long no chart may signal before the alert clears."""

    @model_validator(mode="after")
    def _coherent(self) -> SpcRuleConfig:
        if not (self.ewma or self.cusum or self.western_electric):
            raise ValueError("enable at least one chart (ewma, cusum or western_electric)")
        if len(set(self.western_electric)) != len(self.western_electric):
            raise ValueError("western_electric lists a rule twice")
        if self.max_learn_points < self.min_points:
            raise ValueError("max_learn_points must be >= min_points")
        return self

    def charts(self) -> Charts:
        return Charts(
            ewma_on=self.ewma,
            ewma_lambda=self.ewma_lambda,
            ewma_l=self.ewma_l,
            cusum_on=self.cusum,
            cusum_k=self.cusum_k,
            cusum_h=self.cusum_h,
            cusum_ceiling=self.cusum_ceiling,
            we_rules=tuple(sorted(self.western_electric)),
        )


class SpcRule(SeriesRule[SpcRuleConfig]):
    def __init__(self, config: SpcRuleConfig, identity: RuleIdentity | None = None) -> None:
        super().__init__(config, identity)
        self._charts = config.charts()
        self._episodes = Episodes(config.name, config.on_delay_s, config.off_delay_s)
        self._series: dict[str, SpcSeries] = {}
        self.ignored_bad_quality = 0

    @property
    def history_s(self) -> float:
        """Input a replay needs before an episode: the baseline is learned over learn_s."""
        return self.config.learn_s + self.config.on_delay_s + HISTORY_MARGIN_S

    # --- Rule -----------------------------------------------------------------------------------
    def evaluate(self, reading: Reading, context: Context = NO_CONTEXT) -> list[AlertEvent]:
        value = self._numeric_match(reading, context)
        if value is None:
            return []
        key = reading.series_key
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = SpcSeries()
        ts = reading.source_ts
        if self._late(series.last_ts, ts):
            return []
        series.last_ts = ts  # accepted (also when bad): its duplicate is ignored
        if is_bad(reading):
            self.ignored_bad_quality += 1
            series.bad_ignored += 1
            return []
        subject = series.subject = subject_of(series.subject, reading, context)
        series.unit = reading.unit
        holds = False
        if self._filter.gate_open(reading.asset, context, reading.source_ts):
            holds = self._learn_or_chart(key, series, ts, value)
        else:
            series.gate_closed += 1
        transition = self._episodes.observe(key, ts, holds, subject)
        return [] if transition is None else [self._event(series, transition)]

    def tick(self, watermark: datetime) -> list[AlertEvent]:
        """Complete on- and off-delays that elapsed by `watermark` without a new reading."""
        return [
            self._event(self._series[t.episode.subject.series_key], t)
            for t in self._episodes.tick(watermark)
        ]

    # --- the decision ---------------------------------------------------------------------------
    def _learn_or_chart(self, key: str, series: SpcSeries, ts: datetime, value: float) -> bool:
        """Learn from or chart one good, gated reading; True when a chart signals."""
        cfg = self.config
        baseline = series.baseline
        if baseline is None:
            series.learner.add(ts, value)
            if series.learner.ready(cfg.learn_s, cfg.min_points, cfg.max_learn_points):
                frozen = series.pin or not cfg.adaptive
                series.restart(series.learner.baseline(cfg.min_sigma, frozen))
            return False
        status = self._charts.update(series.charts, baseline.z(value))
        series.status = status
        series.recent.append((ts, value))
        if not baseline.frozen and not status.fired and self._episodes.get(key) is None:
            series.learner.add(ts, value)  # adaptive: relearn from in-control readings only
            if series.learner.ready(cfg.learn_s, cfg.min_points, cfg.max_learn_points):
                series.restart(series.learner.baseline(cfg.min_sigma, frozen=False))
        return bool(status.fired)

    # --- evidence -------------------------------------------------------------------------------
    def _event(self, series: SpcSeries, transition: Transition) -> AlertEvent:
        evidence = self._evidence(series, transition)
        return self._emit(
            transition, evidence.summary, evidence.condition, evidence.parameters, evidence.points
        )

    def _evidence(self, series: SpcSeries, transition: Transition) -> Evidence:
        subject = transition.episode.subject
        baseline, status = series.baseline, series.status
        unit = unit_suffix(series.unit)
        what = f"{subject.signal} of {subject.asset.key}"
        if baseline is None:
            basis = "no baseline (relearning)"
        else:
            basis = (
                f"baseline {num(baseline.centre)} +/- {num(baseline.sigma)}{unit} from "
                f"{baseline.points} points {iso(baseline.learned_from)}..{iso(baseline.learned_to)}"
            )
        if transition.raised:
            side = "above" if status is not None and status.ewma >= 0 else "below"
            fired = "; ".join(self._describe(status)) or "no chart signals now"
            summary = f"{what} drifted {side} its baseline: {fired} ({basis})"
        else:
            summary = f"{what} back in control: no chart signals ({basis})"
        window = PointWindow()
        for ts, value in series.recent:
            window.add(ts, value)
        return Evidence(
            summary=summary,
            condition=self._condition,
            points=window.points(),
            parameters=self._parameters(series, transition),
        )

    @property
    def _condition(self) -> str:
        cfg = self.config
        charts = []
        if cfg.ewma:
            charts.append(f"|EWMA(lambda {num(cfg.ewma_lambda)})| > {num(cfg.ewma_l)} sigma_EWMA")
        if cfg.cusum:
            charts.append(f"CUSUM S+ or S- > h {num(cfg.cusum_h)} (k {num(cfg.cusum_k)})")
        if cfg.western_electric:
            charts.append(f"Western Electric rule {we_text(cfg.western_electric)}")
        return (
            f"any of {', '.join(charts)} on z = (x - centre) / sigma, "
            f"for >= {num(cfg.on_delay_s)} s (clear after {num(cfg.off_delay_s)} s without)"
        )

    def _describe(self, status: ChartStatus | None) -> list[str]:
        if status is None:
            return []
        out = []
        if "ewma" in status.fired:
            out.append(f"EWMA {num(status.ewma)} beyond +/-{num(status.ewma_limit)}")
        if "cusum" in status.fired:
            out.append(
                f"CUSUM S+ {num(status.cusum_pos)} / S- {num(status.cusum_neg)} "
                f"> h {num(self.config.cusum_h)}"
            )
        out.extend(f"Western Electric rule {rule} ({WE_NAMES[rule]})" for rule in status.we_fired)
        return out

    def _parameters(self, series: SpcSeries, transition: Transition) -> dict[str, float | str]:
        cfg, episode = self.config, transition.episode
        gate = cfg.gate
        params: dict[str, float | str] = {
            "ewma_lambda": cfg.ewma_lambda,
            "ewma_l": cfg.ewma_l,
            "cusum_k": cfg.cusum_k,
            "cusum_h": cfg.cusum_h,
            "western_electric": we_text(cfg.western_electric) or "none",
            "on_delay_s": cfg.on_delay_s,
            "off_delay_s": cfg.off_delay_s,
            "gate": "none" if gate is None else f"{gate.signal} == {gate.equals}",
            "first_signal_ts": iso(episode.first_ts),
            "bad_quality_ignored": series.bad_ignored,
            "gate_closed_ignored": series.gate_closed,
            "points_shown": len(series.recent),
        }
        baseline, status = series.baseline, series.status
        if baseline is None:
            params["baseline"] = "relearning"
        else:
            params |= {
                "baseline_centre": baseline.centre,
                "baseline_sigma": baseline.sigma,
                "baseline_points": baseline.points,
                "baseline_learned_from": iso(baseline.learned_from),
                "baseline_learned_to": iso(baseline.learned_to),
                "baseline_frozen": "true" if baseline.frozen else "false",
            }
        if status is not None:
            params |= {
                "fired": "+".join(status.fired) or "none",
                "z": status.z,
                "points_charted": status.n,
                "ewma": status.ewma,
                "ewma_limit": status.ewma_limit,
                "cusum_pos": status.cusum_pos,
                "cusum_neg": status.cusum_neg,
            }
        if not transition.raised and episode.raised_at is not None:
            params["raised_at"] = iso(episode.raised_at)
            params["active_s"] = (transition.at - episode.raised_at).total_seconds()
        return params

    # --- baseline as data, and the operator's commands ----------------------------------------
    def baseline(self, series_key: str) -> Baseline | None:
        series = self._series.get(series_key)
        return None if series is None else series.baseline

    def set_baseline(self, series_key: str, baseline: Baseline) -> None:
        """Install a baseline (e.g. one learned elsewhere); the charts restart on it."""
        self._series.setdefault(series_key, SpcSeries()).restart(baseline)

    def freeze(self, series_key: str) -> None:
        """Stop relearning: the current baseline (or the one being learned) stays fixed."""
        series = self._series.setdefault(series_key, SpcSeries())
        series.pin = True
        if series.baseline is not None and not series.baseline.frozen:
            series.baseline = series.baseline.frozen_copy()
            series.learner = Learner.empty()

    def relearn(self, series_key: str) -> None:
        """Forget the baseline and the charts; learn again from the next good, gated readings.
        An open alert clears through the normal path, since nothing signals while learning."""
        series = self._series.get(series_key)
        if series is not None:
            series.pin = False
            series.restart(None)

    def reset(self, series_key: str) -> None:
        """Forget the series' statistics altogether (baseline, charts, learning, evidence
        points, counters, a freeze) as if never seen, except its last accepted timestamp:
        late readings stay ignored. An open alert clears through the normal path."""
        series = self._series.get(series_key)
        if series is not None:
            self._series[series_key] = SpcSeries(last_ts=series.last_ts, subject=series.subject)

    def series_keys(self) -> list[str]:
        return sorted(self._series)

    def series_state(self, series_key: str) -> SpcSeries | None:
        return self._series.get(series_key)

    def export_state(self) -> dict[str, Any]:
        """Everything this rule knows (series and open episodes) as JSON-compatible data."""
        series = {key: state.to_dict() for key, state in sorted(self._series.items())}
        episodes: dict[str, Any] = {}
        for key in sorted(self._series):
            episode = self._episodes.get(key)
            if episode is not None:
                episodes[key] = {
                    "alert_id": episode.alert_id,
                    "first_ts": iso(episode.first_ts),
                    "raised_at": None if episode.raised_at is None else iso(episode.raised_at),
                    "stopped_ts": None if episode.stopped_ts is None else iso(episode.stopped_ts),
                }
        return {
            "version": STATE_VERSION,
            "rule": self.name,
            "ignored_out_of_order": self.ignored_out_of_order,
            "ignored_bad_quality": self.ignored_bad_quality,
            "series": series,
            "episodes": episodes,
        }

    def import_state(self, data: dict[str, Any]) -> None:
        """Replace this rule's state with `export_state` data of a rule of the same name and
        delays; from then on it decides exactly as the exporting rule would have."""
        if data.get("version") != STATE_VERSION or data.get("rule") != self.name:
            raise ValueError(f"state is not version {STATE_VERSION} of rule {self.name!r}")
        series = {key: SpcSeries.from_dict(value) for key, value in data["series"].items()}
        episodes = Episodes(self.config.name, self.config.on_delay_s, self.config.off_delay_s)
        for key, saved in data["episodes"].items():
            subject = series[key].subject
            if subject is None:
                raise ValueError(f"episode of {key!r} without its series' subject")
            _replay_episode(episodes, key, subject, saved)
        self._series, self._episodes = series, episodes
        self.ignored_out_of_order = int(data["ignored_out_of_order"])
        self.ignored_bad_quality = int(data["ignored_bad_quality"])


def _replay_episode(episodes: Episodes, key: str, subject: Subject, saved: dict[str, Any]) -> None:
    """Rebuild an open episode through Episodes' own API: its id is a pure function of (rule,
    series, first crossing), so replaying the observations that made it reproduces it."""
    first = parse_ts(saved["first_ts"])
    episodes.observe(key, first, True, subject)
    if saved["raised_at"] is not None:
        episodes.observe(key, parse_ts(saved["raised_at"]), True, subject)
    if saved["stopped_ts"] is not None:
        episodes.observe(key, parse_ts(saved["stopped_ts"]), False, subject)
    episode = episodes.get(key)
    rebuilt = (
        None
        if episode is None
        else (
            episode.alert_id,
            None if episode.raised_at is None else iso(episode.raised_at),
            None if episode.stopped_ts is None else iso(episode.stopped_ts),
        )
    )
    if rebuilt != (saved["alert_id"], saved["raised_at"], saved["stopped_ts"]):
        raise ValueError(f"episode of {key!r} does not fit this rule's name and delays")
