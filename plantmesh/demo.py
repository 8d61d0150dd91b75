"""`plantmesh demo`: three simulated plants through the whole pipeline on the local stack.

Starts the sinks first (ingest writer, alerting, bridge), then the simulated PLCs, then one edge
agent per plant; lets data flow for a while; stops the producers, waits until InfluxDB has
everything, stops the rest; then prints per plant and machine how many readings reached InfluxDB
and which alerts fired. The stack stays up so the data can be queried afterwards.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from plantmesh.children import Children, wait_until
from plantmesh.cli import Subparsers
from plantmesh.connections import InfluxConnection
from plantmesh.influxql import InfluxQueryError, query

DEFAULT_CONFIGS = Path(__file__).resolve().parent.parent / "deploy" / "demo"
PLANTS = ("plant-a", "plant-b", "plant-c")


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run the multi-plant demo on the local stack")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of data (default 60)")
    parser.add_argument("--configs", type=Path, default=DEFAULT_CONFIGS, help="demo config folder")
    parser.add_argument("--run-dir", type=Path, default=None, help="where logs and alerts go")
    parser.add_argument(
        "--scenario",
        type=Path,
        default=Path("scenarios/demo.yaml"),
        help="scenario file, relative to the config folder (default scenarios/demo.yaml)",
    )
    parser.add_argument(
        "--speed", type=float, default=1.0, help="simulated seconds per second (default 1)"
    )
    parser.add_argument(
        "--alerting",
        type=Path,
        default=Path("alerting.yaml"),
        help="alerting config, relative to the config folder (default alerting.yaml)",
    )
    parser.set_defaults(func=run)


def _count_readings(influx: InfluxConnection, since_ns: int) -> dict[tuple[str, str], int]:
    series = query(
        influx.url,
        influx.database,
        f"SELECT count(value) FROM readings WHERE time >= {since_ns} GROUP BY plant, machine",
    )
    return {(s.tags["plant"], s.tags["machine"]): int(s.values[0][1]) for s in series}


def _read_alerts(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _expected_machines(network: Path) -> dict[str, list[str]]:
    import yaml  # only the demo needs to read the network this way

    data = yaml.safe_load(network.read_text())
    return {p["id"]: [m["id"] for m in p["machines"]] for p in data["plants"]}


def _print_table(
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


def _print_alerts(alerts: list[dict[str, object]]) -> None:
    print(f"Alert events ({len(alerts)}):")
    for event in alerts:
        evidence = event.get("evidence")
        summary = evidence.get("summary", "") if isinstance(evidence, dict) else ""
        print(
            f"  {event.get('at')}  {str(event.get('kind')).upper():<8} {event.get('rule')}: {summary}"
        )


def _print_score(alert_log: Path, truth: Path) -> None:
    """Detection quality against what the simulator injected (its ground truth)."""
    if not truth.exists():
        return
    command = [sys.executable, "-m", "simulators", "score", "--alerts", str(alert_log)]
    result = subprocess.run(
        [*command, "--truth", str(truth)], capture_output=True, text=True, check=False
    )
    print("\nDetection against the scripted events (plantmesh sim score):")
    print(result.stdout.rstrip() or result.stderr.rstrip())


def run(args: argparse.Namespace) -> int:
    configs: Path = args.configs.resolve()
    if not (configs / "network.yaml").exists():
        print(f"demo configs not found in {configs} (use --configs)", file=sys.stderr)
        return 2
    from plantmesh.stack import manager

    urls = manager.up()
    influx = InfluxConnection(url=urls["PLANTMESH_INFLUX_URL"])
    run_dir = args.run_dir or manager.state_dir() / "demo" / datetime.now(UTC).strftime(
        "%Y%m%dT%H%M%S"
    )
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    alert_log = run_dir / "alerts.jsonl"
    env = {
        **urls,
        "PLANTMESH_DEMO_RUN": str(run_dir),
        "PLANTMESH_DEMO_RUN_ID": run_dir.name,
        "PLANTMESH_LOG_FORMAT": "text",
    }
    machines = _expected_machines(configs / "network.yaml")
    since_ns = time.time_ns()
    print(f"plantmesh demo: {len(machines)} plants, logs in {run_dir}")

    with Children(log_dir=run_dir, env=env) as children:
        children.start_module(
            "ingest-writer", "ingest", "writer", "--config", str(configs / "ingest.yaml")
        )
        children.start_module(
            "alerting", "alerting", "run", "--config", str(configs / args.alerting)
        )
        children.start_module(
            "ingest-bridge", "ingest", "bridge", "--config", str(configs / "ingest.yaml")
        )
        children.start_module(
            "simulators", "simulators", "run", "--network", str(configs / "network.yaml"),
            "--scenario", str(configs / args.scenario), "--speed", str(args.speed),
            "--truth", str(run_dir / "truth.jsonl"),
        )  # fmt: skip
        for plant in machines:
            children.start_module(
                f"agent-{plant}",
                "edge_agent",
                "run",
                "--config",
                str(configs / f"agent-{plant}.yaml"),
            )
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < args.duration:
            time.sleep(min(10.0, args.duration - elapsed))
            if dead := children.dead():
                for child in dead:
                    print(
                        f"\n{child.name} exited early; last lines of its log:\n{child.log_tail()}"
                    )
                return 1
            try:
                total = sum(_count_readings(influx, since_ns).values())
            except InfluxQueryError as exc:
                total = -1
                print(f"  (InfluxDB not answering: {exc})")
            raised = sum(1 for a in _read_alerts(alert_log) if a.get("kind") == "raised")
            print(
                f"  {time.monotonic() - started:5.0f} s: {total} readings in InfluxDB, {raised} alerts"
            )

        print("stopping agents and simulators, draining the pipeline...")
        children.stop([f"agent-{p}" for p in machines])
        children.stop(["simulators"])
        last: list[int] = [-1]

        def settled() -> bool:
            now = sum(_count_readings(influx, since_ns).values())
            done = now == last[0]
            last[0] = now
            return done

        wait_until(settled, timeout_s=60, interval_s=2.0)
        children.stop()

    counts = _count_readings(influx, since_ns)
    alerts = _read_alerts(alert_log)
    _print_table(machines, counts, alerts)
    _print_alerts(alerts)
    _print_score(alert_log, run_dir / "truth.jsonl")
    print(
        "\nThe stack is still running. Query it, for example:\n"
        "  plantmesh query last --plant plant-a --machine press-01\n"
        "  plantmesh query series --signal bearing_temp --since 10m --every 30s\n"
        "  plantmesh query completeness\n"
        '  eval "$(plantmesh stack env)"   # server URLs for other tools\n'
        "  plantmesh stack down            # when you are done"
    )
    empty = [f"{p}/{m}" for p, ids in machines.items() for m in ids if not counts.get((p, m))]
    if empty:
        print(f"\nNo readings arrived from: {', '.join(empty)}", file=sys.stderr)
        return 1
    if not any(a.get("kind") == "raised" for a in alerts):
        print("\nNo alert fired.", file=sys.stderr)
        return 1
    return 0
