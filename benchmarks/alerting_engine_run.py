"""Part 1 of bench_alerting.py: the engine alone (no Kafka), with the shipped rules, with rules
that decide nothing (its own floor), and with every rule call timed (the shares of the cost)."""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from alerting_fleet import CLASSES, SIGNALS, STATE_SIGNALS, Fleet, catalogue_rules
from cpu_meter import CpuMeter

from alerting.catalogue import load_catalogue
from alerting.config import AlertingConfig
from alerting.engine import Engine
from alerting.rules import Rule
from alerting.rules.base import NO_CONTEXT, Context
from plantmesh.contracts import AlertEvent, Reading
from plantmesh.lifecycle import tune_gc


# --- 1. the engine ----------------------------------------------------------------------------
class _TimedRule:
    """A rule whose evaluate() calls are timed into its TimedEngine's counters: by rule type,
    calls that make events apart."""

    def __init__(self, rule: Rule, spent: Counter[str], calls: Counter[str]) -> None:
        self.rule, self.spent, self.calls = rule, spent, calls
        self.name, self.signals = rule.name, rule.signals
        self.config = getattr(rule, "config", None)
        self._type = type(rule).__name__

    def evaluate(self, reading: Reading, context: Context = NO_CONTEXT) -> list[AlertEvent]:
        started = time.perf_counter_ns()
        made = self.rule.evaluate(reading, context)
        spent = time.perf_counter_ns() - started
        key = f"{self._type} making events" if made else self._type
        self.spent[key] += spent
        self.calls[key] += 1
        return made

    def tick(self, watermark: datetime) -> list[AlertEvent]:
        return self.rule.tick(watermark)


class TimedEngine(Engine):
    """For the breakdown: the shipped engine with each rule call timed (the timing itself adds
    to every call, so the run is slower than the shipped one; the shares are what counts)."""

    def __init__(self, rules: list[Rule], **keys: Any) -> None:
        self.spent: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        super().__init__([_TimedRule(r, self.spent, self.calls) for r in rules], **keys)


class NoopRule:
    """A rule that decides nothing: the same name, signals and target classes as a real one,
    so an engine of them measures the engine's own cost per reading (routing, context, the
    call), the floor under any rule set."""

    def __init__(self, rule: Rule) -> None:
        self.name = rule.name
        self.signals = rule.signals
        self.config = getattr(rule, "config", None)

    def evaluate(self, reading: Reading, context: Context = NO_CONTEXT) -> list[AlertEvent]:
        return []

    def tick(self, watermark: datetime) -> list[AlertEvent]:
        return []


def build_noop_engine() -> Engine:
    reference, _ = build_engine()
    rules = [NoopRule(rule) for rule in reference.rules]
    return Engine(
        rules, gates=reference.gate_signals, lateness_s=reference.lateness.total_seconds()
    )


def build_engine(timed: bool = False) -> tuple[Engine, Counter[str]]:
    config = AlertingConfig.model_validate({"rules": catalogue_rules()})
    catalogue = load_catalogue(config.catalogue)
    reference = Engine.from_config(config.rules, catalogue, lateness_s=config.lateness_s)
    types: Counter[str] = Counter(str(rule.type) for rule in config.rules)
    if not timed:
        return reference, types
    timed_engine = TimedEngine(
        reference.rules, gates=reference.gate_signals, lateness_s=config.lateness_s
    )
    return timed_engine, types


@dataclass
class EngineResult:
    readings: int
    seconds: float
    advance_s: float
    events: Counter[str]
    meter: CpuMeter


def run_engine(
    engine: Engine,
    machines: int,
    warmup_s: int,
    measured_s: int,
    profile: Path | None,
    chunk_s: int = 1,
) -> EngineResult:
    """Feed warm-up seconds untimed, then the measured seconds in chunks of pre-built batches
    (only the engine's calls are timed). A chunk is one second of the fleet, about what the
    service holds of its input at a time (a poll): larger chunks made the garbage collector
    walk the benchmark's own pending input, which the service never holds."""
    fleet = Fleet(machines)
    rule_type = {rule.name: type(rule).__name__ for rule in engine.rules}
    events: Counter[str] = Counter()
    readings = 0
    elapsed = advance_s = 0.0
    per_poll = 500
    meter = CpuMeter()
    profiler = cProfile.Profile() if profile is not None else None
    cpu = 0.0
    t = 0
    end = warmup_s + measured_s
    while t < end:
        timed = t >= warmup_s
        span = min(chunk_s, (warmup_s if not timed else end) - t)
        chunk = [item for s in range(t, t + span) for item in fleet.second(s)]
        t += span
        if timed:
            if readings == 0 and isinstance(engine, TimedEngine):  # count the measured part only
                engine.spent.clear()
                engine.calls.clear()
            readings += sum(len(batch.readings) for _, batch in chunk)
            if profiler is not None:
                profiler.enable()
            cpu_from = time.process_time()
        started = time.perf_counter()
        raised: list[AlertEvent] = []
        for i, (machine, batch) in enumerate(chunk, 1):
            raised.extend(engine.process_batch(batch, machine.cls))
            if i % per_poll == 0:
                a = time.perf_counter()
                raised.extend(engine.advance())
                advance_s += time.perf_counter() - a if timed else 0.0
        raised.extend(engine.advance())
        if timed:
            elapsed += time.perf_counter() - started
            cpu += time.process_time() - cpu_from
            if profiler is not None:
                profiler.disable()
            events.update(f"{rule_type[e.rule]} {e.kind.value}" for e in raised)
    meter.used = {"this process": cpu}
    meter.wall = elapsed
    if profiler is not None and profile is not None:
        with profile.open("w") as out:
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    return EngineResult(readings, elapsed, advance_s, events, meter)


def report_engine(name: str, result: EngineResult, target: float) -> list[str]:
    rate = result.readings / result.seconds
    verdict = "ok" if rate >= target else "below"
    cpu = result.meter.used["this process"]
    return [
        f"{name}: {rate:>10,.0f} readings/s  {1e6 / rate:6.2f} µs/reading  "
        f"(target >= {target:,.0f}: {verdict}); advance() {result.advance_s / result.seconds:.0%} "
        f"of the time; CPU {cpu:.2f} s in {result.seconds:.2f} s "
        f"({result.readings / cpu:,.0f} readings per CPU s)",
        f"{'':<10} events on normal data: {sum(result.events.values())} "
        + (str(dict(sorted(result.events.items()))) if result.events else ""),
    ]


def part_engine(args: argparse.Namespace) -> list[str]:
    tune_gc()  # as every service process does (plantmesh.lifecycle.run_service)
    machines = 500
    warmup_s, measured_s = (10, 30) if args.quick else (130, 150)
    target = 200_000
    engine, types = build_engine()
    print(
        f"engine: {len(engine.rules)} rules ({dict(types)}), {machines} machines in "
        f"{len(CLASSES)} classes, {len(SIGNALS) + len(STATE_SIGNALS)} signals at 1 Hz; "
        f"{warmup_s} s of event time untimed, then {measured_s} s "
        f"({machines * 10 * measured_s:,} readings); garbage collector thresholds "
        f"{gc.get_threshold()} as in the services"
    )
    shipped = run_engine(engine, machines, warmup_s, measured_s, None)
    lines = report_engine("shipped", shipped, target)
    floor = run_engine(build_noop_engine(), machines, warmup_s, measured_s, None)
    rate = floor.readings / floor.seconds
    lines.append(
        f"{'no-op':>8}: {rate:>10,.0f} readings/s  {1e6 / rate:6.2f} µs/reading  (the same "
        "routing to rules that decide nothing: the engine's own floor; the rest of the "
        "shipped figure is the rules' work)"
    )
    breakdown, _ = build_engine(timed=True)
    timed = run_engine(breakdown, machines, warmup_s, measured_s, None)
    assert isinstance(breakdown, TimedEngine)
    total_ns = timed.seconds * 1e9
    lines.append(
        f"breakdown (a run with each rule call timed: {timed.readings / timed.seconds:,.0f} "
        "readings/s), share of the engine's time, calls per reading, ns per call:"
    )
    for key, ns in breakdown.spent.most_common():
        calls = breakdown.calls[key]
        lines.append(
            f"{'':<10} {key:<24} {ns / total_ns:6.1%} {calls / timed.readings:6.2f} "
            f"{ns / calls:8.0f}"
        )
    rest = 1 - sum(breakdown.spent.values()) / total_ns
    lines.append(
        f"{'':<10} {'rest (engine loop, advance)':<24} {rest:6.1%}   (advance() "
        f"{timed.advance_s / timed.seconds:.1%})"
    )
    if args.profile is not None:  # a run of its own: the profiler slows everything down
        profiled, _ = build_engine()
        run_engine(profiled, machines, warmup_s, measured_s, args.profile)
        lines.append(f"{'':<10} cProfile of the shipped engine (a separate run): {args.profile}")
    return lines
