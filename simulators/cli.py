"""Subcommands of `plantmesh sim` (also `python -m simulators`):

plantmesh sim run --network FILE [--speed N] [--seed N] [--record FILE] [--duration S]
                  [--start ISO]
plantmesh sim list --network FILE [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from plantmesh.cli import Subparsers
from simulators.catalog import signal_catalog
from simulators.errors import SimulatorError
from simulators.network import NetworkConfig, load_network
from simulators.records import RecordWriter
from simulators.runtime import PlantEndpoints, Simulation

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
    run.add_argument("--speed", type=_positive, default=1.0, help="tick tick_s/speed apart")
    run.add_argument("--seed", type=int, help="override the network file's seed")
    run.add_argument("--record", type=Path, help="append every served value as JSON lines")
    run.add_argument(
        "--duration", type=_positive, help="stop after S seconds (default: SIGTERM/SIGINT)"
    )
    run.add_argument("--start", type=_aware, help="simulated time of tick 0 (default: now)")
    run.set_defaults(func=run_command)

    listing = actions.add_parser("list", help="print plants, machines, endpoints and signals")
    listing.add_argument("--network", required=True, type=Path, help="network YAML file")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=list_command)


def run_command(args: argparse.Namespace) -> int:
    network = load_network(args.network)
    return asyncio.run(_serve(args, network))


async def _serve(args: argparse.Namespace, network: NetworkConfig) -> int:
    writer = RecordWriter(args.record) if args.record else None
    if writer is not None:
        try:
            writer.open()
        except OSError as exc:
            log.error("cannot write the record file %s: %s", args.record, exc.strerror or exc)
            return 2
    sim = Simulation(
        network,
        speed=args.speed,
        seed=args.seed,
        start=args.start,
        on_records=writer.write if writer else None,
        keep_records=False,  # a long run would hold every value in memory
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with sim.serving():
            log.info(
                "simulation running: %d machines, tick %.3f s (speed %g), seed %d",
                len(sim.machines),
                sim.interval_s,
                sim.speed,
                sim.engine.seed,
            )
            async with asyncio.TaskGroup() as tasks:
                ticker = tasks.create_task(sim.run(args.duration), name="sim-ticker")

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
        if writer:
            writer.close()
    log.info("stopped after tick %d", sim.tick)
    return 0


def list_command(args: argparse.Namespace) -> int:
    network = load_network(args.network)
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
        json.dump({"seed": network.seed, "tick_s": network.tick_s, "plants": plants}, sys.stdout)
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
    return 0


def _modbus_json(endpoints: PlantEndpoints) -> dict[str, Any] | None:
    if endpoints.modbus_host is None:
        return None
    return {
        "host": endpoints.modbus_host,
        "port": endpoints.modbus_port,
        "units": list(endpoints.modbus_units),
    }
