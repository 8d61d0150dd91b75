"""Alerting throughput and latency, each figure printed next to its target.

    .venv/bin/python benchmarks/bench_alerting.py [--quick] [--profile engine.txt]
        [--skip-latency | --skip-engine]

1. engine: readings evaluated per second by one process (alerting.engine.Engine, no Kafka) with
   the whole rule catalogue on 500 machines: 5 machine classes, 20 rules per class (every rule
   type, several instances each, targeted with `machine_classes`, some gated on `running`),
   10 signals per machine at 1 Hz of event time (a seeded mean-reverting random walk around a
   nominal value plus sensor noise; `running` and `mode` change rarely), one ReadingBatch per
   machine per second with its machine class, `advance()` once per 500 batches as the service
   does once per poll. Target: 200,000 readings/s. The events raised on this normal data are
   printed by rule type: they are false alarms. A run of rules that decide nothing gives the
   engine's own floor; another times each rule call (by rule type, calls that make events
   apart) for the shares of the cost; `--profile FILE` adds a cProfile run (top 25 by tottime)
   of its own.
2. latency: the real alerting service (`python -m alerting run`, as deployed: its poll timeout,
   its sinks, its commit after every poll) on the local Kafka, fed normalized batches with the
   `machine_class` header at a steady 10,000 readings/s (1,000 machines x 10 signals at 1 Hz).
   Scheduled excursions, each on its own machine, make a `threshold` rule with on_delay_s 0
   raise; each raised event's latency is from the producer's send of its batch to this
   process's consumer of alerts.events receiving it. Target: p99 < 500 ms.

Every phase reports the CPU time it cost: this process, the service and (when local) Kafka.
Servers: PLANTMESH_KAFKA_BOOTSTRAP (the local stack's default otherwise). Topics, the consumer
groups and the temporary directory are namespaced and deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import math
import os
import pstats
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from alerting.catalogue import load_catalogue
from alerting.config import AlertingConfig
from alerting.engine import Engine
from alerting.rules import Rule
from alerting.rules.base import NO_CONTEXT, Context
from plantmesh.connections import DEFAULT_KAFKA_BOOTSTRAP, KafkaConnection
from plantmesh.contracts import AlertEvent, AssetPath, Quality, Reading, ReadingBatch, encode
from plantmesh.contracts.readings import STATUS_BAD_SENSOR_FAILURE
from plantmesh.kafka.security import kafka_client_options
from plantmesh.lifecycle import tune_gc
from plantmesh.stack import manager
from plantmesh.topics import HEADER_MACHINE_CLASS, Topics

KAFKA = os.environ.get("PLANTMESH_KAFKA_BOOTSTRAP") or DEFAULT_KAFKA_BOOTSTRAP


def kafka_options() -> dict[str, Any]:
    """Our own clients' connection: the environment's credentials (`plantmesh stack env`)."""
    return kafka_client_options(KafkaConnection(bootstrap=KAFKA))


ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 1, 1, tzinfo=UTC)

# --- the fleet ---------------------------------------------------------------------------------
# signal: (unit, nominal, process wander sigma, sensor noise sigma, AR coefficient of the wander)
SIGNALS: dict[str, tuple[str | None, float, float, float, float]] = {
    "bearing_temp": ("degC", 62.0, 0.02, 0.1, 0.999),
    "motor_temp": ("degC", 70.0, 0.02, 0.1, 0.999),
    "vibration_rms": ("mm/s", 1.6, 0.005, 0.05, 0.99),
    "pressure": ("bar", 150.0, 0.05, 0.8, 0.98),
    "flow": ("m3/h", 40.0, 0.02, 0.5, 0.98),
    "motor_current": ("A", 55.0, 0.05, 0.6, 0.98),
    "speed": ("rpm", 1480.0, 0.2, 2.0, 0.98),
    "oil_level": ("%", 80.0, 0.01, 0.2, 0.999),
}
"""The process wanders slowly (stationary sigma = wander / sqrt(1 - AR^2), about half the sensor
noise) and the sensor adds white noise: what a healthy machine's trend looks like."""
STATE_SIGNALS = ("running", "mode")  # bool and text: together 10 signals per machine
CLASSES = {"press": 1.0, "compressor": 1.15, "pump": 0.85, "conveyor": 0.7, "mixer": 1.3}
"""Machine classes and the factor of their nominal values."""
BAD_QUALITY_P = 2e-5  # share of readings with a Bad status (a sensor glitch)
STOP_P = 1 / 1800  # chance a running machine stops in a given second (for 60-300 s)
MODE_P = 1 / 3600  # chance the mode changes in a given second


def class_rules(cls: str, factor: float) -> list[dict[str, Any]]:
    """20 rules for one machine class: every rule type, several of them more than once."""
    running = {"signal": "running", "equals": True}

    def nominal(signal: str) -> float:
        return SIGNALS[signal][1] * factor

    def rule(name: str, type_: str, issue: str, signal: str, **keys: Any) -> dict[str, Any]:
        return {
            "name": f"{cls}-{name}",
            "type": type_,
            "issue_type": issue,
            "signal": signal,
            "machine_classes": [cls],
            **keys,
        }

    over, drift, frozen = "bearing-overtemperature", "process-drift", "frozen-sensor"
    return [
        rule("bearing-hot", "threshold", over, "bearing_temp", above=nominal("bearing_temp") + 25,
             deadband=3.0, on_delay_s=10.0, gate=running),
        rule("bearing-trip", "threshold", over, "bearing_temp", above=nominal("bearing_temp") + 40,
             deadband=5.0, on_delay_s=0.0, severity="critical"),
        rule("motor-hot", "threshold", over, "motor_temp", above=nominal("motor_temp") + 30,
             deadband=3.0, on_delay_s=5.0),
        rule("pressure-low", "threshold", "pressure-loss", "pressure",
             below=nominal("pressure") * 0.8, deadband=5.0, on_delay_s=5.0, gate=running),
        rule("current-high", "threshold", "unplanned-stop", "motor_current",
             above=nominal("motor_current") * 1.4, deadband=2.0, on_delay_s=3.0),
        rule("bearing-heating", "rate_of_change", over, "bearing_temp", window_s=60.0,
             per="minute", rising_above=3.0, deadband=0.5, on_delay_s=10.0),
        rule("pressure-bleed", "rate_of_change", "pressure-loss", "pressure", window_s=10.0,
             per="second", falling_below=-2.0, on_delay_s=2.0, gate=running),
        rule("pressure-frozen", "flatline", frozen, "pressure", for_s=60.0, epsilon=0.01,
             gate=running),
        rule("flow-frozen", "flatline", frozen, "flow", for_s=60.0, epsilon=0.01, gate=running),
        rule("machine-silent", "stale", "comms-loss", "running", for_s=30.0, scope="machine",
             signals=["bearing_temp", "pressure", "speed"]),
        rule("vibration-silent", "stale", "comms-loss", "vibration_rms", for_s=20.0),
        rule("vibration-zone", "vibration_zone", "vibration-instability", "vibration_rms",
             zones={cls: {"b": 2.3, "c": 4.5, "d": 7.1}, "default": {"b": 1.4, "c": 2.8, "d": 4.5}},
             deadband=0.3, on_delay_s=5.0, gate=running),
        rule("pressure-spc", "spc", drift, "pressure", learn_s=120.0, on_delay_s=10.0, gate=running),
        rule("flow-spc", "spc", drift, "flow", learn_s=120.0, on_delay_s=10.0, gate=running),
        rule("current-spc", "spc", drift, "motor_current", learn_s=120.0, western_electric=[1, 2],
             on_delay_s=5.0, gate=running),
        rule("pressure-swing", "oscillation", "vibration-instability", "pressure", window_s=10.0,
             min_amplitude=nominal("pressure") * 0.1, gate=running),
        rule("speed-swing", "oscillation", "vibration-instability", "speed", window_s=10.0,
             measure="std", min_amplitude=50.0, gate=running),
        rule("running-flapping", "state_flapping", "state-flapping", "running",
             min_transitions=6, window_s=600.0),
        rule("mode-flapping", "state_flapping", "state-flapping", "mode", min_transitions=6,
             window_s=600.0),
        rule("bearing-sensor", "bad_quality", "sensor-fault", "bearing_temp", for_s=10.0),
    ]  # fmt: skip


def catalogue_rules() -> list[dict[str, Any]]:
    return [r for cls, factor in CLASSES.items() for r in class_rules(cls, factor)]


@dataclass
class Machine:
    asset: AssetPath
    cls: str
    nominal: dict[str, float]
    wander: dict[str, float]
    running: bool = True
    stopped_until: int = 0
    mode: str = "auto"


class Fleet:
    """Machines with a seeded walk per signal; `second(t)` is one batch per machine."""

    def __init__(self, machines: int, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self._seqs: dict[str, int] = {}
        classes = list(CLASSES)
        self.machines = []
        for i in range(machines):
            cls = classes[i % len(classes)]
            asset = AssetPath(plant=f"plant-{i % 4}", area="area1", line=f"line{i % 10}",
                              machine=f"{cls}-{i:04d}")  # fmt: skip
            nominal = {s: spec[1] * CLASSES[cls] for s, spec in SIGNALS.items()}
            self.machines.append(Machine(asset, cls, nominal, dict.fromkeys(SIGNALS, 0.0)))

    def readings(self, m: Machine, t: int, ts: datetime) -> list[Reading]:
        rng = self.rng
        if m.running and rng.random() < STOP_P:
            m.running, m.stopped_until = False, t + rng.randint(60, 300)
        elif not m.running and t >= m.stopped_until:
            m.running = True
        if rng.random() < MODE_P:
            m.mode = "manual" if m.mode == "auto" else "auto"
        out = []
        for name, (unit, _, wander_sigma, noise, ar) in SIGNALS.items():
            m.wander[name] = ar * m.wander[name] + rng.gauss(0.0, wander_sigma)
            value = m.nominal[name] + m.wander[name] + rng.gauss(0.0, noise)
            if not m.running and name in ("speed", "motor_current"):
                value = 0.0
            out.append(self._reading(m.asset, name, round(value, 3), unit, ts))
        out.append(self._reading(m.asset, "running", m.running, None, ts))
        out.append(self._reading(m.asset, "mode", m.mode, None, ts))
        return out

    def _reading(
        self, asset: AssetPath, signal: str, value: Any, unit: str | None, ts: datetime
    ) -> Reading:
        # model_construct: the same objects decoding gives, without paying validation here.
        keys: dict[str, Any] = {}
        if self.rng.random() < BAD_QUALITY_P:
            keys = {"quality": Quality.BAD, "status_code": STATUS_BAD_SENSOR_FAILURE}
        return Reading.model_construct(
            asset=asset, signal=signal, value=value, unit=unit, source_ts=ts, gateway_ts=ts, **keys
        )

    def second(self, t: int, start: datetime = T0) -> list[tuple[Machine, ReadingBatch]]:
        """One batch per machine; sequence numbers run per gateway (one per plant), as an
        agent numbers its batches (the engine skips a batch whose number it saw before)."""
        ts = start + timedelta(seconds=t)
        out = []
        for m in self.machines:
            gateway = f"gw-{m.asset.plant}"
            seq = self._seqs[gateway] = self._seqs.get(gateway, -1) + 1
            batch = ReadingBatch.model_construct(
                gateway_id=gateway, session_id="s1", seq=seq, sent_at=ts,
                readings=self.readings(m, t, ts),
            )  # fmt: skip
            out.append((m, batch))
        return out


# --- CPU --------------------------------------------------------------------------------------
_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


class CpuMeter:
    """CPU seconds of this process, of named pids and of the local Kafka between start and stop."""

    def __init__(self, pids: dict[str, int] | None = None) -> None:
        self.pids = dict(pids or {})
        self.pids.update(
            {s.name: s.pid for s in manager.status() if s.pid is not None and s.address == KAFKA}
        )
        self.used: dict[str, float] = {}
        self.wall = 0.0
        self._from: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        now = {"this process": time.process_time(), "wall": time.perf_counter()}
        for name, pid in self.pids.items():
            value = _cpu_s(pid)
            if value is not None:
                now[name] = value
        return now

    def start(self) -> None:
        self._from = self._now()

    def stop(self) -> None:
        now = self._now()
        self.wall = now.pop("wall") - self._from["wall"]
        self.used = {name: now[name] - self._from[name] for name in now if name in self._from}

    def line(self, phase: str) -> str:
        parts = ", ".join(f"{name} {seconds:.2f}" for name, seconds in self.used.items())
        return f"{phase:<8} {self.wall:6.2f} s wall; CPU s: {parts}"


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
    types = Counter(rule.type for rule in config.rules)
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


# --- 2. latency through the service -----------------------------------------------------------
MACHINES_E2E = 1000  # x 10 signals at 1 Hz = 10,000 readings/s


def service_config(namespace: str, directory: Path) -> Path:
    config = {
        "namespace": namespace,
        "kafka": {"bootstrap": KAFKA, "client_id": namespace},
        "group_id": f"{namespace}-alerting",
        "start_from": "earliest",
        "kafka_topics": {"create": True, "partitions": 4, "replication_factor": 1},
        "alert_log": str(directory / "alerts.jsonl"),
        "rules": catalogue_rules(),
    }
    AlertingConfig.model_validate(config)  # fail here, not in the subprocess
    path = directory / "alerting.yaml"
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    return path


def excursion_batch(batch: ReadingBatch, machine: Machine) -> ReadingBatch:
    """The same batch with bearing_temp far above the class's trip limit (bearing-trip)."""
    hot = machine.nominal["bearing_temp"] + 80.0
    readings = [
        r.model_copy(update={"value": hot}) if r.signal == "bearing_temp" else r
        for r in batch.readings
    ]
    return batch.model_copy(update={"readings": readings})


@dataclass
class Outgoing:
    at: float  # planned wall-clock send time (time.time())
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    excursion: str | None  # the machine id, when this batch should raise


def plan(start: float, warmup_s: int, measured_s: int, per_s: int) -> Iterator[Outgoing]:
    """Every machine once a second, spread evenly within the second; `per_s` excursions a
    second during the measured seconds, each on a machine not used before."""
    fleet = Fleet(MACHINES_E2E, seed=2)
    order = list(range(MACHINES_E2E))
    random.Random(3).shuffle(order)
    chosen = iter(order)
    start_dt = datetime.fromtimestamp(math.floor(start), UTC)
    offset = start - math.floor(start)
    for t in range(warmup_s + measured_s):
        hot: set[int] = set()
        if t >= warmup_s:
            hot = {next(chosen) for _ in range(per_s)}
        for i, (machine, batch) in enumerate(fleet.second(t, start_dt)):
            if i in hot:
                batch = excursion_batch(batch, machine)
            yield Outgoing(
                at=math.floor(start) + offset + t + i / MACHINES_E2E,
                key=f"{machine.asset.plant}/{machine.asset.machine}".encode(),
                value=encode(batch),
                headers=[(HEADER_MACHINE_CLASS, machine.cls.encode())],
                excursion=machine.asset.machine if i in hot else None,
            )


async def produce(
    producer: AIOKafkaProducer, topic: str, batches: list[Outgoing], sent: dict[str, float]
) -> float:
    """Send each batch at its planned time (in groups every 10 ms); returns the worst lag
    behind the plan, in seconds."""
    worst = 0.0
    futures = []
    i = 0
    while i < len(batches):
        now = time.time()
        if batches[i].at > now:
            await asyncio.sleep(min(0.01, batches[i].at - now))
            continue
        worst = max(worst, now - batches[i].at)
        while i < len(batches) and batches[i].at <= now:
            out = batches[i]
            if out.excursion is not None:
                sent[out.excursion] = time.time()
            futures.append(await producer.send(topic, out.value, key=out.key, headers=out.headers))
            i += 1
    await asyncio.gather(*futures)
    return worst


async def collect(
    consumer: AIOKafkaConsumer, received: dict[str, float], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        for records in (await consumer.getmany(timeout_ms=50)).values():
            now = time.time()
            for record in records:
                event = json.loads(record.value or b"{}")
                if event.get("kind") == "raised" and event.get("rule", "").endswith(
                    "-bearing-trip"
                ):
                    received.setdefault(event["asset"]["machine"], now)


def start_service(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """The service as deployed: its own process, `python -m alerting run --config`."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "alerting", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def wait_for_log(
    path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while text not in await asyncio.to_thread(path.read_text, errors="replace"):
        if proc.poll() is not None:
            raise RuntimeError(f"the alerting service exited ({proc.returncode}); see {path}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {text!r} in {path} after {timeout} s")
        await asyncio.sleep(0.1)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


async def bench_latency(
    namespace: str, directory: Path, warmup_s: int, measured_s: int, per_s: int
) -> list[str]:
    topics = Topics(namespace)
    admin = AIOKafkaAdminClient(**kafka_options())
    await admin.start()
    try:  # the service creates them too (same settings); here so the consumer can start first
        await admin.create_topics(
            [NewTopic(t, 4, 1) for t in (topics.telemetry_normalized, topics.alert_events)]
        )
    finally:
        await admin.close()
    log_path = directory / "service.log"
    proc = start_service(service_config(namespace, directory), log_path)
    consumer = AIOKafkaConsumer(
        topics.alert_events, **kafka_options(), auto_offset_reset="earliest"
    )
    producer = AIOKafkaProducer(  # the ingest writer's settings (plantmesh.kafka.clients)
        **kafka_options(), enable_idempotence=True, acks="all", linger_ms=5,
        max_batch_size=1 << 20,
    )  # fmt: skip
    received: dict[str, float] = {}
    sent: dict[str, float] = {}
    stop = asyncio.Event()
    collector: asyncio.Task[None] | None = None
    try:
        await consumer.start()
        await producer.start()
        collector = asyncio.create_task(collect(consumer, received, stop), name="collect")
        await wait_for_log(log_path, "rule(s)", proc, 60)
        # A probe excursion: its alert proves the service joined its group and runs end to end.
        fleet = Fleet(1, seed=9)
        machine, batch = fleet.second(0, datetime.now(UTC))[0]
        probe = excursion_batch(batch, machine)
        probe_key = f"{machine.asset.plant}/{machine.asset.machine}".encode()
        await producer.send_and_wait(
            topics.telemetry_normalized, encode(probe), key=probe_key,
            headers=[(HEADER_MACHINE_CLASS, machine.cls.encode())],
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while machine.asset.machine not in received:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"no alert for the probe excursion; see {log_path}")
            await asyncio.sleep(0.05)
        built = time.perf_counter()
        # The planned start: building the batches (about 0.1 ms each) must fit before it.
        start = time.time() + 2.0 + (warmup_s + measured_s) * MACHINES_E2E * 2e-4
        batches = list(plan(start, warmup_s, measured_s, per_s))
        if time.time() > start:
            raise RuntimeError(f"building {len(batches)} batches took too long")
        build_s = time.perf_counter() - built
        meter = CpuMeter({"service": proc.pid})
        await asyncio.sleep(start - time.time())
        meter.start()
        lag = await produce(producer, topics.telemetry_normalized, batches, sent)
        deadline = time.monotonic() + 15
        while set(sent) - set(received) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        meter.stop()
    finally:
        stop.set()
        if collector is not None:
            await collector
        await producer.stop()
        await consumer.stop()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    latencies = [(received[m] - at) * 1000 for m, at in sent.items() if m in received]
    missing = len(sent) - len(latencies)
    readings = len(batches) * 10
    lines = [
        f"sent {len(batches):,} batches ({readings:,} readings, {warmup_s} s warm-up + "
        f"{measured_s} s) at {readings / (warmup_s + measured_s):,.0f} readings/s; producer at "
        f"most {lag * 1000:.0f} ms behind its plan (batches built in {build_s:.1f} s)",
        f"excursions: {len(sent)} sent, {len(latencies)} raised events received, {missing} missing",
    ]
    if latencies:
        first = min(sent.values())
        worst = sorted(
            ((received[m] - at) * 1000, at - first) for m, at in sent.items() if m in received
        )
        lines.append(
            "worst 5, ms (at s of the run): "
            + ", ".join(f"{ms:.0f} ({s:.1f})" for ms, s in reversed(worst[-5:]))
        )
        p99 = percentile(latencies, 99)
        verdict = "ok" if p99 < 500 and not missing else "below"
        lines.append(
            f"latency send -> alerts.events, ms: p50 {percentile(latencies, 50):.0f}  "
            f"p95 {percentile(latencies, 95):.0f}  p99 {p99:.0f}  max {max(latencies):.0f}  "
            f"mean {statistics.fmean(latencies):.0f}  (target p99 < 500: {verdict})"
        )
    slow = [line for line in log_path.read_text(errors="replace").splitlines() if "slow" in line]
    lines += [f"service: {line.split('] ', 1)[-1]}" for line in slow[-3:]]
    lines.append(meter.line("e2e"))
    service_cpu = meter.used.get("service")
    if service_cpu is not None:
        lines.append(
            f"service CPU: {service_cpu / meter.wall:.0%} of a core, "
            f"{service_cpu / readings * 1e6:.1f} µs per reading (decode, rules, sinks, Kafka)"
        )
    return lines


# --- the run ----------------------------------------------------------------------------------
async def delete_topics(namespace: str) -> None:
    admin = AIOKafkaAdminClient(**kafka_options())
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(namespace)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


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


async def main(args: argparse.Namespace) -> None:
    if not args.skip_engine:
        print("\n".join(part_engine(args)))
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    warmup_s, measured_s, per_s = (2, 5, 4) if args.quick else (5, 30, 4)
    print(
        f"\nlatency: python -m alerting run, {MACHINES_E2E} machines x 10 signals at 1 Hz, "
        f"{per_s} excursions/s on distinct machines"
    )
    try:
        with tempfile.TemporaryDirectory(prefix=f"{namespace}-") as directory:
            lines = await bench_latency(namespace, Path(directory), warmup_s, measured_s, per_s)
    finally:
        await delete_topics(namespace)
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    parser.add_argument(
        "--profile", type=Path, help="write a cProfile summary (top 25 by tottime) of the engine"
    )
    parser.add_argument("--skip-latency", action="store_true", help="only the engine part")
    parser.add_argument("--skip-engine", action="store_true", help="only the latency part")
    parsed = parser.parse_args()
    if parsed.skip_latency:
        print("\n".join(part_engine(parsed)))
    else:
        asyncio.run(main(parsed))
