"""What the demo prints at the end: readings per machine, the alerts, and their score against the
simulator's ground truth."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from plantmesh.connections import InfluxConnection
from plantmesh.influxql import query


def count_readings(influx: InfluxConnection, since_ns: int) -> dict[tuple[str, str], int]:
    series = query(
        influx.url,
        influx.database,
        f"SELECT count(value) FROM readings WHERE time >= {since_ns} GROUP BY plant, machine",
        token=influx.token_value(),
    )
    return {(s.tags["plant"], s.tags["machine"]): int(s.values[0][1]) for s in series}


def read_alerts(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def expected_machines(network: Path) -> dict[str, list[str]]:
    import yaml  # only the demo needs to read the network this way

    data = yaml.safe_load(network.read_text())
    return {p["id"]: [m["id"] for m in p["machines"]] for p in data["plants"]}


def print_table(
    machines: dict[str, list[str]],
    counts: dict[tuple[str, str], int],
    alerts: list[dict[str, object]],
) -> None:
    raised: dict[tuple[str, str], list[str]] = defaultdict(list)
    for event in alerts:
        if event.get("kind") == "raised":
            asset = event["asset"]
            assert isinstance(asset, dict)
            raised[(asset["plant"], asset["machine"])].append(
                f"{event['rule']} ({event['signal']})"
            )
    print(f"\n{'plant':<10} {'machine':<16} {'readings in InfluxDB':>21}  alerts raised")
    print(f"{'-' * 10} {'-' * 16} {'-' * 21}  {'-' * 30}")
    for plant, ids in machines.items():
        total = 0
        for machine in ids:
            count = counts.get((plant, machine), 0)
            total += count
            fired = ", ".join(raised.get((plant, machine), [])) or "-"
            print(f"{plant:<10} {machine:<16} {count:>21}  {fired}")
        print(f"{plant:<10} {'(all machines)':<16} {total:>21}\n")


def print_alerts(alerts: list[dict[str, object]]) -> None:
    print(f"Alert events ({len(alerts)}):")
    for event in alerts:
        evidence = event.get("evidence")
        summary = evidence.get("summary", "") if isinstance(evidence, dict) else ""
        print(
            f"  {event.get('at')}  {str(event.get('kind')).upper():<8} {event.get('rule')}: {summary}"
        )


def print_score(alert_log: Path, truth: Path) -> None:
    """Detection quality against what the simulator injected (its ground truth)."""
    if not truth.exists():
        return
    command = [sys.executable, "-m", "simulators", "score", "--alerts", str(alert_log)]
    result = subprocess.run(
        [*command, "--truth", str(truth)], capture_output=True, text=True, check=False
    )
    print("\nDetection against the scripted events (plantmesh sim score):")
    print(result.stdout.rstrip() or result.stderr.rstrip())
