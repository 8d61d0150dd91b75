"""`plantmesh demo`: three simulated plants through the whole pipeline on the local stack.

Starts the sinks first (ingest writer, alarm service, alerting, bridge), then the simulated PLCs,
then one edge agent per plant; lets data flow for a while, printing each notification as the
escalation contacts receive it; stops the producers, waits until InfluxDB has everything, stops
the rest; then prints per plant and machine how many readings reached InfluxDB, which alerts
fired, and every alarm's trail. The stack stays up so the data can be queried afterwards.
"""

from __future__ import annotations

import argparse
import secrets
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plantmesh.children import Children, wait_until
from plantmesh.cli import Subparsers
from plantmesh.connections import InfluxConnection
from plantmesh.demo import report
from plantmesh.demo.alarm_report import print_alarms, verdict
from plantmesh.demo.alarm_story import AlarmStory, Api, ApiError, first_ack_within_s, make_token
from plantmesh.demo.console import start_console, stop_console
from plantmesh.demo.database import demo_database
from plantmesh.demo.hooks import HookReceiver
from plantmesh.demo.incident_report import incident_verdict, print_incidents
from plantmesh.demo.responders import FAST_PLANT, SLOW_PLANT, Responders, habits
from plantmesh.demo.scorecard_report import scorecard_text, scorecard_verdict, scorecards
from plantmesh.influxql import TOKEN_FILE_VAR, InfluxQueryError

DEFAULT_CONFIGS = Path(__file__).resolve().parents[2] / "deploy" / "demo"
DEFAULT_SCENARIO = Path("scenarios/demo.yaml")


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run the multi-plant demo on the local stack")
    parser.add_argument(
        "--duration", type=float, default=180.0, help="seconds of data (default 180)"
    )
    parser.add_argument("--configs", type=Path, default=DEFAULT_CONFIGS, help="demo config folder")
    parser.add_argument("--run-dir", type=Path, default=None, help="where logs and alerts go")
    parser.add_argument(
        "--scenario",
        type=Path,
        default=DEFAULT_SCENARIO,
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start_sinks(children: Children, configs: Path, alerting: Path, api: Api) -> bool:
    """Writer, alarm service, alerting and bridge; True once the alarm API answers (the
    alarm service must be reading alerts.events before the first alert is raised)."""
    ingest = str(configs / "ingest.yaml")
    children.start_module("ingest-writer", "ingest", "writer", "--config", ingest)
    alarms = children.start_module(
        "alarms", "alerting", "alarms", "--config", str(configs / "alarms.yaml")
    )
    incidents = str(configs / "incidents.yaml")
    children.start_module("incidents", "alerting", "incidents", "--config", incidents)
    children.start_module("alerting", "alerting", "run", "--config", str(configs / alerting))
    children.start_module("ingest-bridge", "ingest", "bridge", "--config", ingest)

    def answers() -> bool:
        try:
            api.call("", "GET", "/healthz")
        except ApiError:
            return False
        return True

    if not wait_until(lambda: answers() or not alarms.alive(), timeout_s=90):
        print(f"the alarm service did not answer; its log:\n{alarms.log_tail()}")
        return False
    if not alarms.alive():
        print(f"the alarm service exited; its log:\n{alarms.log_tail()}")
        return False
    return True


def _run_producers(
    args: argparse.Namespace,
    children: Children,
    configs: Path,
    plants: list[str],
    influx: InfluxConnection,
    since_ns: int,
    run_dir: Path,
    t0: float,
) -> bool:
    """Simulators and agents for `args.duration` seconds, with progress (seconds since `t0`,
    the clock the notifications are printed on); False if one died."""
    children.start_module(
        "simulators", "simulators", "run", "--network", str(configs / "network.yaml"),
        "--scenario", str(configs / args.scenario), "--speed", str(args.speed),
        "--truth", str(run_dir / "truth.jsonl"),
    )  # fmt: skip
    for plant in plants:
        children.start_module(
            f"agent-{plant}", "edge_agent", "run", "--config", str(configs / f"agent-{plant}.yaml")
        )
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < args.duration:
        time.sleep(min(10.0, args.duration - elapsed))
        if dead := children.dead():
            for child in dead:
                print(f"\n{child.name} exited early; last lines of its log:\n{child.log_tail()}")
            return False
        try:
            total = sum(report.count_readings(influx, since_ns).values())
        except InfluxQueryError as exc:
            total = -1
            print(f"  (InfluxDB not answering: {exc})")
        alerts = report.read_alerts(run_dir / "alerts.jsonl")
        raised = sum(1 for a in alerts if a.get("kind") == "raised")
        print(
            f"  {time.monotonic() - started:5.0f} s: {total} readings in InfluxDB, {raised} alerts"
        )
    print("stopping agents and simulators, draining the pipeline...")
    children.stop([f"agent-{p}" for p in plants])
    children.stop(["simulators"])
    last: list[int] = [-1]

    def settled() -> bool:
        now = sum(report.count_readings(influx, since_ns).values())
        done = now == last[0]
        last[0] = now
        return done

    wait_until(settled, timeout_s=60, interval_s=2.0)
    return True


def run(args: argparse.Namespace) -> int:
    configs: Path = args.configs.resolve()
    if not (configs / "network.yaml").exists():
        print(f"demo configs not found in {configs} (use --configs)", file=sys.stderr)
        return 2
    from plantmesh.demo.identities import kafka_identities, merge, mqtt_identities
    from plantmesh.stack import manager
    from plantmesh.stack.influx_security import ALARMS, READER, WRITER, token_file

    urls = manager.up()
    # Least privilege on a secured stack: the demo counts readings as `reader`, the writer
    # writes as `writer`, the other services read and write as `alarms` (none is admin).
    influx = InfluxConnection(url=urls["PLANTMESH_INFLUX_URL"], token_file=token_file(READER))
    services_token = token_file(ALARMS)
    run_dir = args.run_dir or manager.state_dir() / "demo" / datetime.now(UTC).strftime(
        "%Y%m%dT%H%M%S"
    )
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    alert_log = run_dir / "alerts.jsonl"
    # The last demo's console is an alarm service on the database made fresh below: left
    # running, it would reconnect to the new one and lease this run's notifications, sending
    # them to the last run's receiver (they arrive a lease later, after escalations).
    stop_console(manager.state_dir())
    database_url, database = demo_database(urls.get("PLANTMESH_DATABASE_URL"), run_dir)
    api = Api(f"http://127.0.0.1:{_free_port()}")
    env = {
        **urls,
        **manager.extra_env(),  # the secured stack's operator credentials and CA
        "PLANTMESH_DEMO_RUN": str(run_dir),
        # Names this run's consumer groups: unique even when --run-dir is reused, or a run
        # would resume an earlier run's offsets and judge its alerts again.
        "PLANTMESH_DEMO_RUN_ID": f"{run_dir.name}-{secrets.token_hex(4)}",
        "PLANTMESH_LOG_FORMAT": "text",
        "PLANTMESH_DEMO_DATABASE_URL": database_url,
        "PLANTMESH_DEMO_API_PORT": api.url.rsplit(":", 1)[1],
        "PLANTMESH_DEMO_WEBHOOK_SECRET": secrets.token_urlsafe(16),
        **({TOKEN_FILE_VAR: str(services_token)} if services_token is not None else {}),
    }
    machines = report.expected_machines(configs / "network.yaml")
    # Each agent publishes as its own gateway, the bridge reads as `bridge`; in Kafka each
    # service is its own principal.
    identities = merge(
        mqtt_identities({p: configs / f"agent-{p}.yaml" for p in machines}), kafka_identities()
    )
    if (writer_token := token_file(WRITER)) is not None:
        identities.setdefault("ingest-writer", {})[TOKEN_FILE_VAR] = str(writer_token)
    since_ns = time.time_ns()
    print(f"plantmesh demo: {len(machines)} plants, logs in {run_dir}")
    print(f"alarms: system of record {database}, API {api.url}")
    alarms_config = configs / "alarms.yaml"
    ack_within_s = first_ack_within_s(configs / "escalation.yaml")
    plan = habits(ack_within_s)
    try:
        reader = make_token(alarms_config, env, "demo-headquarters", "hq", "*")
        tokens = {
            plant: make_token(alarms_config, env, habit.who.replace(" ", "-"), habit.role, plant)
            for plant, habit in plan.items()
        }
    except ApiError as exc:
        print(f"could not make the demo's API tokens: {exc}", file=sys.stderr)
        return 1

    t0 = time.monotonic()
    started_at = datetime.now(UTC)
    story = AlarmStory(api, reader, started=t0)
    responders = Responders(api, tokens, plan, story.say)
    story.first_notice = responders.first_notice
    with (
        HookReceiver(env["PLANTMESH_DEMO_WEBHOOK_SECRET"], story.on_notification) as hooks,
        responders,
        Children(
            log_dir=run_dir,
            env={**env, "PLANTMESH_DEMO_HOOKS": hooks.url},
            per_child=identities,
        ) as children,
    ):
        if not _start_sinks(children, configs, args.alerting, api):
            return 1
        plants = list(machines)
        if not _run_producers(args, children, configs, plants, influx, since_ns, run_dir, t0):
            return 1
        # Keep the alarm service running until the fast plant's answered alarms would have
        # escalated, and the slow plant has answered.
        quiet = max(
            responders.last_told(FAST_PLANT) + ack_within_s,
            responders.last_told(SLOW_PLANT) + plan[SLOW_PLANT].delay_s,
        )
        wait_until(lambda: time.monotonic() > quiet + 3.0, timeout_s=120, interval_s=1.0)
        try:
            alarms, incidents = story.alarms(), story.incidents()
            table = scorecard_text(api, reader, started_at)
            cards = scorecards(api, reader, started_at)
        except ApiError as exc:
            print(f"reading the alarms back from the API failed: {exc}", file=sys.stderr)
            alarms, incidents, table, cards = [], [], "", {}
        children.stop()

    counts = report.count_readings(influx, since_ns)
    alerts = report.read_alerts(alert_log)
    report.print_table(machines, counts, alerts)
    report.print_alerts(alerts)
    print_alarms(alarms)
    print_incidents(incidents)
    report.print_score(alert_log, run_dir / "truth.jsonl")
    print("\nPlant scorecards since the demo began (plantmesh scorecard):")
    print(table.rstrip() or "  (not available)")
    problems = _problems(args, machines, counts, alerts, alarms, story, responders, ack_within_s)
    problems += _incident_problems(args, incidents)
    problems += _scorecard_problems(args, cards)
    console = start_console(manager.state_dir(), alarms_config, env, api, run_dir / "console.log")
    if influx.token_file is not None:  # secured: queries need credentials
        print(f"\nInfluxDB read-only credentials: plantmesh query --token-file {influx.token_file}")
    print(
        "\nThe stack is still running. Query it, for example:\n"
        "  plantmesh query last --plant plant-a --machine press-01\n"
        "  plantmesh query series --signal bearing_temp --since 10m --every 30s\n"
        "  plantmesh query completeness\n"
        '  plantmesh query influxql "SELECT * FROM alarm_state WHERE time > now() - 15m"\n'
        '  eval "$(plantmesh stack env)"   # server URLs for other tools\n'
        "  plantmesh stack down            # when you are done (stops the console too)"
    )
    if console is None:
        problems.append(f"the console did not start; see {run_dir / 'console.log'}")
    else:
        print(
            f"\nThe console is running at {console.url}/console (pid {console.pid}).\n"
            f"  log in as headquarters (every plant): {reader}\n"
            f"  or as plant-a's operator (plant-a only): {tokens[SLOW_PLANT]}\n"
            f"  the same tokens work for the API: PLANTMESH_API_URL={console.url} "
            f"PLANTMESH_API_TOKEN={reader} plantmesh scorecard"
        )
    for problem in problems:
        print(f"\nDemo incomplete: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _scorecard_problems(args: argparse.Namespace, cards: dict[str, dict[str, Any]]) -> list[str]:
    if args.scenario != DEFAULT_SCENARIO:
        return []
    shown, missing = scorecard_verdict(cards)
    print("\nResponders, as scripted:" if not missing else "\nResponders:")
    for line in shown:
        print(f"  {line}")
    return missing


def _incident_problems(args: argparse.Namespace, incidents: list[dict[str, Any]]) -> list[str]:
    if args.scenario != DEFAULT_SCENARIO:
        return []
    shown, missing = incident_verdict(incidents)
    print("\nNetwork incident, as scripted:" if not missing else "\nNetwork incident:")
    for line in shown:
        print(f"  {line}")
    return missing


def _problems(
    args: argparse.Namespace,
    machines: dict[str, list[str]],
    counts: dict[tuple[str, str], int],
    alerts: list[dict[str, object]],
    alarms: list[dict[str, Any]],
    story: AlarmStory,
    responders: Responders,
    ack_within_s: float,
) -> list[str]:
    """What the demo failed to show; prints the escalation story's outcome."""
    problems = list(story.problems)
    if FAST_PLANT not in {a.habit.plant for a in responders.answers}:
        problems.append(f"{FAST_PLANT} acknowledged nothing through the API")
    empty = [f"{p}/{m}" for p, ids in machines.items() for m in ids if not counts.get((p, m))]
    if empty:
        problems.append(f"no readings arrived from: {', '.join(empty)}")
    if not any(a.get("kind") == "raised" for a in alerts):
        problems.append("no alert fired")
    if args.scenario == DEFAULT_SCENARIO:  # what the default scenario is scripted to show
        shown, missing = verdict(alarms, responders.answered(FAST_PLANT), ack_within_s)
        print("\nEscalation, as scripted:" if not missing else "\nEscalation:")
        for line in shown:
            print(f"  {line}")
        problems += missing
    else:
        print("\n(another scenario: the escalation story is shown, not checked)")
    return problems
