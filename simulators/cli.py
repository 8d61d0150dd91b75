"""Subcommands of `plantmesh sim` (also `python -m simulators`):

plantmesh sim run --network FILE [--scenario FILE] [--speed N] [--seed N] [--record FILE]
                  [--truth FILE] [--duration S] [--start ISO]
plantmesh sim list --network FILE [--json]
plantmesh sim score --alerts ALERTS.jsonl --truth TRUTH.jsonl [--grace S] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from plantmesh.cli import Subparsers
from simulators.catalog import signal_catalog
from simulators.errors import SimulatorError
from simulators.event_config import EventConfig, ServerEvent
from simulators.network import NetworkConfig, load_network
from simulators.records import JsonLinesWriter, RecordWriter
from simulators.runtime import PlantEndpoints, Simulation
from simulators.scenario import ScenarioConfig, load_scenario
from simulators.scoring import AlertLogError, dump_score, format_score, read_alerts, score
from simulators.truth import TruthWriter, read_truth

log = logging.getLogger("simulators")


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return value


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give a timezone, e.g. 2026-01-01T00:00:00Z")
    return value


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("sim", help="simulated plants serving OPC UA and Modbus TCP")
    actions = parser.add_subparsers(dest="sim_action", metavar="ACTION", required=True)

    run = actions.add_parser("run", help="serve every plant of a network file")
    run.add_argument("--network", required=True, type=Path, help="network YAML file")
    run.add_argument("--scenario", type=Path, help="scenario YAML file (scripted events)")
    run.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        metavar="N",
        help="scenario seconds per wall-clock second (default 1): the scenario and the physics "
        "run N times faster, but timestamps and the ground truth stay wall-clock, so event "
        "times and durations in the truth are divided by N and a rule's on-delay of 5 s covers "
        "5*N s of scenario physics (25 s at speed 5)",
    )
    run.add_argument("--seed", type=int, help="override the network file's seed")
    run.add_argument("--record", type=Path, help="append every served value as JSON lines")
    run.add_argument("--truth", type=Path, help="append every injected event as JSON lines")
    run.add_argument(
        "--duration",
        type=_positive,
        help="stop after S wall-clock seconds (default: the scenario's duration_s / speed, "
        "else until SIGTERM/SIGINT)",
    )
    run.add_argument(
        "--start",
        type=_aware,
        help="timestamp of tick 0 (default: now); time then runs with the wall clock. A start "
        "other than now makes OPC UA and truth times disagree with Modbus poll times",
    )
    run.set_defaults(func=run_command)

    listing = actions.add_parser("list", help="print plants, machines, endpoints and signals")
    listing.add_argument("--network", required=True, type=Path, help="network YAML file")
    listing.add_argument("--scenario", type=Path, help="also list this scenario's events")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=list_command)

    scoring = actions.add_parser(
        "score",
        help="precision, recall, F1 and detection latency of an alert log per event kind, "
        "one alert per event, with ISA-18.2 alert-load figures",
    )
    scoring.add_argument("--alerts", required=True, type=Path, help="alert log (AlertEvent JSONL)")
    scoring.add_argument("--truth", required=True, type=Path, help="ground truth of a sim run")
    scoring.add_argument(
        "--grace",
        type=float,
        default=60.0,
        help="seconds after an event's end an alert still detects it (default 60)",
    )
    scoring.add_argument("--json", action="store_true", help="machine-readable output")
    scoring.set_defaults(func=score_command)


def run_command(args: argparse.Namespace) -> int:
    network = load_network(args.network)
    scenario = load_scenario(args.scenario, network) if args.scenario else None
    return asyncio.run(_serve(args, network, scenario))


def _open(path: Path | None, what: str, writer: type[JsonLinesWriter]) -> JsonLinesWriter | None:
    if path is None:
        return None
    opened = writer(path)
    try:
        opened.open()
    except OSError as exc:
        log.error("cannot write the %s file %s: %s", what, path, exc.strerror or exc)
        raise SystemExit(2) from None
    return opened


async def _serve(
    args: argparse.Namespace, network: NetworkConfig, scenario: ScenarioConfig | None
) -> int:
    writer = _open(args.record, "record", RecordWriter)
    truth = _open(args.truth, "truth", TruthWriter)
    duration = args.duration
    if duration is None and scenario is not None and scenario.duration_s is not None:
        duration = scenario.duration_s / args.speed
    sim = Simulation(
        network,
        speed=args.speed,
        seed=args.seed,
        start=args.start,
        on_records=writer.write if writer else None,
        keep_records=False,  # a long run would hold every value in memory
        scenario=scenario,
        on_truth=truth.write if truth else None,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with sim.serving():
            log.info(
                "simulation running: %d machines, %d scripted events, tick %.3f s (speed %g), "
                "seed %d",
                len(sim.machines),
                len(sim.engine.events),
                sim.interval_s,
                sim.speed,
                sim.engine.seed,
            )
            async with asyncio.TaskGroup() as tasks:
                ticker = tasks.create_task(sim.run(duration), name="sim-ticker")

                async def stop_on_signal() -> None:
                    await stop.wait()
                    log.info("stopping")
                    ticker.cancel()

                watcher = tasks.create_task(stop_on_signal(), name="sim-signal-watch")
                ticker.add_done_callback(lambda _: watcher.cancel())
    except SimulatorError as exc:
        log.error("%s", exc)
        return 1
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        for opened in (writer, truth):
            if opened:
                opened.close()
    log.info("stopped after tick %d", sim.tick)
    return 0


def score_command(args: argparse.Namespace) -> int:
    try:
        alerts = read_alerts(args.alerts)
        truth = read_truth(args.truth)
    except OSError as exc:
        print(f"cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except (AlertLogError, ValueError, KeyError, TypeError) as exc:
        print(f"unusable input: {exc}", file=sys.stderr)
        return 2
    result = score(alerts, truth, timedelta(seconds=args.grace))
    print(dump_score(result) if args.json else format_score(result))
    return 0


def _event_json(event: EventConfig) -> dict[str, Any]:
    data = event.model_dump(mode="json", exclude_none=True)
    data["severity"] = event.expected_severity.value
    return data


def _event_line(event: EventConfig) -> str:
    where = "/".join(
        str(part)
        for part in (event.plant, getattr(event, "machine", None), getattr(event, "signal", None))
        if part is not None
    )
    if isinstance(event, ServerEvent):
        where += f" ({event.protocol or 'all'} server)"
    end = f"{event.end_s:g}" if event.end_s is not None else "end"
    return (
        f"  {event.start_s:>7g} s - {end:>6}  {event.kind:<15} {where}  [{event.expected_severity}]"
    )


def list_command(args: argparse.Namespace) -> int:
    network = load_network(args.network)
    scenario = load_scenario(args.scenario, network) if args.scenario else None
    events = [*network.events, *(scenario.events if scenario else [])]
    endpoints = Simulation(network).endpoints()
    catalog = signal_catalog(network)
    if args.json:
        plants = [
            {
                "plant": plant.id,
                "opcua_url": endpoints[plant.id].opcua_url,
                "modbus": _modbus_json(endpoints[plant.id]),
                "signals": [e.to_json() for e in catalog if e.plant == plant.id],
            }
            for plant in network.plants
        ]
        listing = {
            "seed": network.seed,
            "tick_s": network.tick_s,
            "plants": plants,
            "events": [_event_json(e) for e in events],
        }
        json.dump(listing, sys.stdout)
        print()
        return 0
    print(f"seed {network.seed}, tick {network.tick_s:g} s")
    for plant in network.plants:
        print(f"\n{plant.id}: {endpoints[plant.id].describe()}")
        for machine in plant.machines:
            where = f"unit {machine.unit_id}" if machine.unit_id else "namespace urn:plantmesh:sim"
            print(
                f"  {machine.area}/{machine.line}/{machine.id}  {machine.machine_class}  "
                f"{machine.protocol.value} ({where})"
            )
            for entry in catalog:
                if (entry.plant, entry.machine) != (plant.id, machine.id):
                    continue
                if entry.register is not None:
                    r = entry.register
                    location = (
                        f"{r.table.value} {entry.wire_address} {r.type.value}"
                        + (f" {r.byte_order.value}/{r.word_order.value}" if r.width > 1 else "")
                        + (f" x{r.scale:g}" if r.scale != 1 else "")
                        + (f" {r.offset:+g}" if r.offset else "")
                    )
                else:
                    location = f"s={entry.opcua_node}"
                print(f"    {entry.signal.name:<14} {entry.signal.unit:<6} {location}")
    if events:
        print(f"\nscripted events ({len(events)}):")
        for event in events:
            print(_event_line(event))
    return 0


def _modbus_json(endpoints: PlantEndpoints) -> dict[str, Any] | None:
    if endpoints.modbus_host is None:
        return None
    return {
        "host": endpoints.modbus_host,
        "port": endpoints.modbus_port,
        "units": list(endpoints.modbus_units),
    }
