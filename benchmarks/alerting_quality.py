"""Detection quality of an alerting configuration, scored against the simulator's ground truth,
next to a threshold-only baseline, on several scenarios and seeds, in seconds instead of hours.

    .venv/bin/python benchmarks/alerting_quality.py [--seeds 1 2 3] [--scenario fault-tour ...]
        [--config deploy/demo/alerting.yaml] [--baseline benchmarks/threshold-baseline.yaml]
        [--details]

Each run: the demo network and a scenario of deploy/demo/scenarios, simulated offline at speed 1
(simulators/offline.py: what the demo's agents would publish, no servers or brokers), every
batch through one alerting engine (event time advanced after each tick, as the service does per
poll), the alert events scored by `plantmesh sim score`'s scorer (one-to-one episodes,
should_alert, ISA-18.2 figures). Latency is from the event's start to the alert's event time
(offline there is no Kafka to publish on; the live demo measures that).

Printed per scenario and configuration: recall, precision and F1 summed over the seeds, the
worst seed's recall and precision, paged harmless events, the most raises of one series in
10 minutes, and the median latency per kind; `--details` adds each run's missed events and
false alerts."""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from alerting.catalogue import load_catalogue
from alerting.config import AlertingConfig, load_alerting_config
from alerting.engine import Engine
from plantmesh.contracts import AlertEvent
from simulators.matching import episodes
from simulators.network import load_network
from simulators.offline import OfflineRun, offline_run
from simulators.scenario import load_scenario
from simulators.scoring import KindScore, Score, score

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "deploy" / "demo"
WINDOW_S = 600.0


def run_engine(config: AlertingConfig, run: OfflineRun) -> list[AlertEvent]:
    engine = Engine.from_config(
        config.rules, load_catalogue(config.catalogue), lateness_s=config.lateness_s
    )
    events: list[AlertEvent] = []
    last_sent = None
    for item in run.batches:
        if last_sent is not None and item.batch.sent_at != last_sent:
            events.extend(engine.advance())  # a tick is over
        last_sent = item.batch.sent_at
        events.extend(engine.process_batch(item.batch, item.machine_class))
    events.extend(engine.advance())
    return events


def most_raises_in_window(alerts: list[AlertEvent]) -> int:
    """The most raises of one series (asset + signal + rule) within any 10 minutes."""
    by_series: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for episode in episodes(alerts):
        a = episode.alert
        by_series[(a.asset.key, a.signal, a.rule)].append(episode.raised.timestamp())
    most = 0
    for times in by_series.values():
        times.sort()
        start = 0
        for end, t in enumerate(times):
            while t - times[start] > WINDOW_S:
                start += 1
            most = max(most, end - start + 1)
    return most


@dataclass
class Summary:
    overall: KindScore = field(default_factory=lambda: KindScore("all"))
    kinds: dict[str, KindScore] = field(default_factory=dict)
    worst_recall: float = 1.0
    worst_precision: float = 1.0
    paged: int = 0
    most_raises: int = 0
    runs: list[tuple[int, Score]] = field(default_factory=list)

    def add(self, seed: int, result: Score, alerts: list[AlertEvent]) -> None:
        self.runs.append((seed, result))
        for source, target in ((result.overall, self.overall), *self._kind_pairs(result)):
            target.events += source.events
            target.harmless += source.harmless
            target.detected += source.detected
            target.paged += source.paged
            target.true_alerts += source.true_alerts
            target.false_alerts += source.false_alerts
            target.latencies_s.extend(source.latencies_s)
        self.worst_recall = min(self.worst_recall, result.overall.recall or 0.0)
        self.worst_precision = min(self.worst_precision, result.overall.precision or 0.0)
        self.paged += len(result.paged)
        self.most_raises = max(self.most_raises, most_raises_in_window(alerts))

    def _kind_pairs(self, result: Score) -> list[tuple[KindScore, KindScore]]:
        return [
            (k, self.kinds.setdefault(name, KindScore(name))) for name, k in result.kinds.items()
        ]


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_comparison(scenario: str, seeds: list[int], results: dict[str, Summary]) -> None:
    names = list(results)
    print(f"\n## {scenario} (seeds {', '.join(map(str, seeds))})")
    print(f"{'':34}" + "".join(f"{n:>22}" for n in names))
    rows = [
        ("recall (all seeds)", lambda s: fmt(s.overall.recall)),
        ("precision (all seeds)", lambda s: fmt(s.overall.precision)),
        ("F1 (all seeds)", lambda s: fmt(s.overall.f1)),
        ("worst seed recall", lambda s: fmt(s.worst_recall)),
        ("worst seed precision", lambda s: fmt(s.worst_precision)),
        (
            "events detected / should alert",
            lambda s: f"{s.overall.detected}/{s.overall.should_alert}",
        ),
        ("true / false alerts", lambda s: f"{s.overall.true_alerts}/{s.overall.false_alerts}"),
        ("harmless events paged", lambda s: str(s.paged)),
        ("most raises of a series / 10 min", lambda s: str(s.most_raises)),
    ]
    for label, value in rows:
        print(f"{label:34}" + "".join(f"{value(results[n]):>22}" for n in names))
    kinds = sorted({k for s in results.values() for k in s.kinds})
    print("median latency (s) / detected per kind:")
    for kind in kinds:
        cells = []
        for n in names:
            k = results[n].kinds.get(kind)
            if k is None or not k.should_alert:
                cells.append("harmless" if k is not None else "-")
            else:
                cells.append(f"{fmt(k.latency('median'), 1)} ({k.detected}/{k.should_alert})")
        print(f"  {kind:32}" + "".join(f"{c:>22}" for c in cells))


def print_details(name: str, summary: Summary) -> None:
    for seed, result in summary.runs:
        print(f"  [{name}, seed {seed}]")
        for event in result.missed:
            print(f"    missed {event.kind} {event.where} at {event.start:%H:%M:%S}")
        for alert in result.false_alerts:
            print(
                f"    false {alert.rule} {alert.asset.plant}/{alert.asset.machine}/{alert.signal}"
                f" at {alert.at:%H:%M:%S}: {alert.evidence.summary[:90]}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--scenario", nargs="+", default=["fault-tour", "cross-plant-instability"])
    parser.add_argument("--config", type=Path, default=DEMO / "alerting.yaml")
    parser.add_argument(
        "--baseline", type=Path, default=ROOT / "benchmarks" / "threshold-baseline.yaml"
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="simulated time (default: the scenario's)"
    )
    parser.add_argument("--details", action="store_true")
    args = parser.parse_args(argv)
    configs = {"rules": load_alerting_config(args.config)}
    if args.baseline:
        configs["threshold baseline"] = load_alerting_config(args.baseline)
    network = load_network(DEMO / "network.yaml")
    started = time.perf_counter()
    for name in args.scenario:
        scenario = load_scenario(DEMO / "scenarios" / f"{name}.yaml", network)
        results = {label: Summary() for label in configs}
        seconds = args.seconds or scenario.duration_s or 600.0
        for seed in args.seeds:
            run = offline_run(network, scenario, seconds, seed=seed)
            for label, config in configs.items():
                alerts = run_engine(config, run)
                results[label].add(seed, score(alerts, run.truth), alerts)
            readings = sum(len(b.batch.readings) for b in run.batches)
            print(
                f"{name} seed {seed}: {seconds:.0f} s simulated, {readings} readings",
                file=sys.stderr,
            )
        print_comparison(name, args.seeds, results)
        if args.details:
            for label, summary in results.items():
                print_details(label, summary)
    print(f"\n({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
