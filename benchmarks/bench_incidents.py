"""Network-incident correlation: alert events per second with 10,000 open alerts in 50 plants.

    .venv/bin/python benchmarks/bench_incidents.py [--events N] [--seed S]

The fleet: 50 plants, each with 40 machines of 8 classes (2,000 machines), 10 issue types. First
10,000 alerts are raised on random (machine, issue type) pairs and stay open, spread so that most
(class, issue type) keys have members in several plants: incidents open and hold many members,
the expensive case (every update carries the whole incident). Then N further events, random
raises and clears of those pairs, are timed through the correlator, twice:

- `engine`: Correlator.on_event only (the state machine);
- `stage`: also each change made into its IncidentUpdate (explanation against the fleet) and
  encoded to JSON, the per-event work of the correlation stage besides Kafka.

Kafka's share (re-keying, publishing) is measured by the stage's own figures elsewhere; this is
the CPU bound of one process.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerting.incidents.correlator import Correlator
from alerting.incidents.policy import Correlation, CorrelationConfig
from alerting.incidents.updates import to_update
from plantmesh.contracts import AlertEvent, AlertEventKind, AssetPath, Evidence, Severity, encode
from plantmesh.fleet import Fleet, Machine

PLANTS = 50
MACHINES_PER_PLANT = 40
CLASSES = [f"class_{n}" for n in range(8)]
ISSUES = [f"issue-{n}" for n in range(10)]
OPEN_ALERTS = 10_000
T0 = datetime(2026, 12, 5, tzinfo=UTC)
POLICY = Correlation(min_plants=2, min_machines=2, window_s=3600, hold_s=600)


def fleet() -> Fleet:
    machines = []
    for p in range(PLANTS):
        for m in range(MACHINES_PER_PLANT):
            attributes = {"firmware": f"2.{m % 4}", "model": f"M-{m % 3}"}
            machines.append(Machine(f"plant-{p:02d}", f"m{m:03d}", CLASSES[m % 8], attributes))
    return Fleet(machines)


def event(n: int, machine: Machine, issue: str, kind: AlertEventKind, alert_id: str) -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id,
        kind=kind,
        issue_type=issue,
        rule="bench",
        rule_version="1",
        machine_class=machine.machine_class,
        asset=AssetPath(plant=machine.plant, area="a", line="l", machine=machine.machine),
        signal="s",
        severity=Severity.HIGH,
        at=T0 + timedelta(milliseconds=n),
        evidence=Evidence(summary="bench", condition="bench"),
    )


def workload(seed: int, count: int) -> tuple[list[AlertEvent], list[AlertEvent]]:
    rng = random.Random(seed)
    machines = list(fleet())
    open_alerts: dict[tuple[str, str, str], str] = {}
    preload: list[AlertEvent] = []
    n = 0
    while len(open_alerts) < OPEN_ALERTS:
        machine, issue = rng.choice(machines), rng.choice(ISSUES)
        key = (machine.plant, machine.machine, issue)
        if key in open_alerts:
            continue
        n += 1
        open_alerts[key] = f"a{n}"
        preload.append(event(n, machine, issue, AlertEventKind.RAISED, f"a{n}"))
    by_name = {(m.plant, m.machine): m for m in machines}
    timed: list[AlertEvent] = []
    keys = list(open_alerts)
    for _ in range(count):
        n += 1
        key = rng.choice(keys)
        machine = by_name[(key[0], key[1])]
        if key in open_alerts:  # clear it; it will be raised again later with a new id
            timed.append(event(n, machine, key[2], AlertEventKind.CLEARED, open_alerts.pop(key)))
        else:
            open_alerts[key] = f"a{n}"
            timed.append(event(n, machine, key[2], AlertEventKind.RAISED, f"a{n}"))
    return preload, timed


def run(preload: list[AlertEvent], timed: list[AlertEvent], stage: bool) -> tuple[float, int]:
    the_fleet = fleet()
    correlator = Correlator(CorrelationConfig(version="bench", default=POLICY))
    for e in preload:
        correlator.on_event(e)
    changes = 0
    started = time.perf_counter()
    for e in timed:
        made = correlator.on_event(e)
        changes += len(made)
        if stage:
            for change in made:
                encode(to_update(change, the_fleet, POLICY))
    return len(timed) / (time.perf_counter() - started), changes


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    preload, timed = workload(args.seed, args.events)
    probe = Correlator(CorrelationConfig(version="bench", default=POLICY))
    for e in preload:
        probe.on_event(e)
    incidents = list(probe.open_incidents())
    members = sum(len(i.members) for i in incidents)
    print(
        f"fleet: {PLANTS} plants, {PLANTS * MACHINES_PER_PLANT} machines, {len(CLASSES)} classes, "
        f"{len(ISSUES)} issue types; {OPEN_ALERTS} open alerts -> {len(incidents)} open "
        f"incidents holding {members} members"
    )
    for stage in (False, True):
        rate, changes = run(preload, timed, stage)
        name = "stage " if stage else "engine"
        print(
            f"{name}  {rate:10,.0f} alert events/s ({len(timed)} events, {changes} incident "
            f"changes{', each made an IncidentUpdate and encoded' if stage else ''})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
